/**
 * The node server's `clientError` listener: protocol-level failures (unframed bytes, headers
 * over node's limit, a request not received in time) answer with the same `{_tag, message}`
 * JSON body as every other error instead of node's bare status line, then close the socket.
 *
 * A reply to `HEAD` carries no body (RFC 9110 §9.3.2): a client that sent `HEAD` reads none,
 * and the JSON bytes after the headers would be a protocol error on its side ("Data after
 * `Connection: close`"). The parser fails before node knows the method, so it is read from the
 * bytes the parser was given; when they do not show a request line (the failing request began
 * in an earlier chunk), the reply carries no body either.
 */
import type * as Net from "node:net"

const CLIENT_ERRORS: Record<string, { status: number; reason: string; tag: string; message: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    reason: "Request Header Fields Too Large",
    tag: "HeadersTooLarge",
    message: "the request headers are too large"
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    reason: "Request Timeout",
    tag: "RequestTimeout",
    message: "the request was not received in time"
  }
}

/**
 * Whether the reply may carry a body: the bytes start with a request line (or garbage that is
 * no method, such as `GARBAGE`) and no request in them is a `HEAD`.
 */
const bodyAllowed = (rawPacket: unknown): boolean => {
  if (!Buffer.isBuffer(rawPacket)) return false
  const text = rawPacket.toString("latin1", 0, Math.min(rawPacket.length, 65_536))
  return /^[!-~]/.test(text) && !/(?:^|\n)HEAD[ \t]/i.test(text)
}

export const onClientError = (
  error: Error & { code?: string; rawPacket?: unknown },
  socket: Net.Socket
): void => {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy()
    return
  }
  const known = CLIENT_ERRORS[error.code ?? ""] ?? {
    status: 400,
    reason: "Bad Request",
    tag: "BadRequest",
    message: "malformed HTTP request"
  }
  const body = bodyAllowed(error.rawPacket) ? JSON.stringify({ _tag: known.tag, message: known.message }) : ""
  socket.end(
    `HTTP/1.1 ${known.status} ${known.reason}\r\n` +
      (body === ""
        ? ""
        : `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`) +
      `connection: close\r\n\r\n${body}`
  )
}

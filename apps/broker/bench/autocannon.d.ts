// The subset of autocannon's API this benchmark uses (the package ships no types).
declare module "autocannon" {
  namespace autocannon {
    interface Request {
      method?: string
      path?: string
      headers?: Record<string, string>
      body?: string
      onResponse?: (status: number, body: string, context: Record<string, unknown>) => void
      setupRequest?: (req: Request, context: Record<string, unknown>) => Request
    }
    interface Options {
      url?: string
      connections?: number
      duration?: number
      method?: string
      headers?: Record<string, string>
      body?: string
      requests?: Array<Request>
    }
    interface Histogram {
      average: number
      p50: number
      p99: number
      /** Requests: how many were answered over the run (absent on latency). */
      total?: number
    }
    interface Result {
      requests: Histogram
      latency: Histogram
      errors: number
      timeouts: number
      non2xx: number
    }
  }
  function autocannon(
    options: autocannon.Options,
    callback: (err: Error | null, result: autocannon.Result) => void
  ): unknown
  export default autocannon
}

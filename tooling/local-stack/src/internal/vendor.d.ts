// Types for the two untyped engines we start in-process. Only what we use is declared.

declare module "dynalite" {
  import type { Server } from "node:http"

  interface DynaliteOptions {
    readonly path?: string
    readonly createTableMs?: number
    readonly deleteTableMs?: number
    readonly updateTableMs?: number
    readonly maxItemSizeKb?: number
  }
  function dynalite(options?: DynaliteOptions): Server
  export default dynalite
}

declare module "s3rver" {
  import type { AddressInfo } from "node:net"

  interface S3rverOptions {
    readonly address?: string
    readonly port?: number
    readonly silent?: boolean
    readonly directory: string
    readonly resetOnClose?: boolean
    readonly allowMismatchedSignatures?: boolean
    readonly configureBuckets?: ReadonlyArray<{ readonly name: string }>
  }
  class S3rver {
    constructor(options: S3rverOptions)
    run(): Promise<AddressInfo>
    close(): Promise<void>
  }
  export default S3rver
}

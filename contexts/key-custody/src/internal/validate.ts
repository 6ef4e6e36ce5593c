import { Effect } from "effect"
import { InvalidKeyContext } from "../KeyCustodyError.js"

const WALLET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const PURPOSE = /^[a-z0-9][a-z0-9._-]{0,63}$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/

export interface Context {
  readonly wallet: string
  readonly purpose: string
}

export const contextProblem = (context: Context): InvalidKeyContext | undefined => {
  if (!WALLET.test(context.wallet)) {
    return new InvalidKeyContext({
      field: "wallet",
      reason: "expected 1-128 characters from [A-Za-z0-9._-], starting with a letter or digit"
    })
  }
  if (!PURPOSE.test(context.purpose)) {
    return new InvalidKeyContext({
      field: "purpose",
      reason: "expected 1-64 characters from [a-z0-9._-], starting with a letter or digit"
    })
  }
  return undefined
}

export const checkContext = (context: Context): Effect.Effect<void, InvalidKeyContext> => {
  const problem = contextProblem(context)
  return problem === undefined ? Effect.void : Effect.fail(problem)
}

export const isPurpose = (purpose: string): boolean => PURPOSE.test(purpose)

export interface AddressLike {
  readonly wallet: string
  readonly name: string
  readonly version: number
}

export const addressProblem = (address: AddressLike): InvalidKeyContext | undefined => {
  if (!WALLET.test(address.wallet)) {
    return new InvalidKeyContext({
      field: "address.wallet",
      reason: "expected 1-128 characters from [A-Za-z0-9._-], starting with a letter or digit"
    })
  }
  if (address.name.length === 0 || address.name.length > 512 || CONTROL.test(address.name)) {
    return new InvalidKeyContext({
      field: "address.name",
      reason: "expected 1-512 characters without control characters"
    })
  }
  if (!Number.isSafeInteger(address.version) || address.version < 1) {
    return new InvalidKeyContext({ field: "address.version", reason: "expected a positive integer" })
  }
  return undefined
}

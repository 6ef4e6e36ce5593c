export * as Api from "./Api.js"
export * as Catalog from "./Catalog.js"
export * as CatalogFile from "./CatalogFile.js"
export * as SessionPolicy from "./SessionPolicy.js"

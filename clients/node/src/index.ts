// @hallpass/client: the hallpass HTTP API from Node (every operation, types generated from
// docs/openapi.json), a session cache kept true by /v1/changes, and an Express-style
// middleware. The sleepless-sessions facade is @hallpass/client/sleepless.
export * from "./client";
export * from "./errors";
export * from "./changes";
export * from "./cache";
export * from "./middleware";
export type { components, paths, operations } from "./schema";

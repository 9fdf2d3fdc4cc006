// The loopback Stellantis IDP + API now lives in src/sandbox/idp.ts (the sandbox and `npm run demo`
// use it too); the tests keep importing it from here.
export * from "../../src/sandbox/idp.js";

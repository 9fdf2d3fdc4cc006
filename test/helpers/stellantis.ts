// The loopback Stellantis IDP + API lives in sandbox/idp.ts (the sandbox and `npm run demo` use it
// too); the tests and the bench import it from here.
export * from "../../sandbox/idp.js";

// Where the config file is by default. Apart from load.ts so the entry point can name it without
// loading the YAML parser (src/main.ts keeps its static imports small: see trapRunSignals).

export const DEFAULT_CONFIG_PATH = "/etc/credd/credd.yaml";

/** `$CREDD_CONFIG` when set and non-empty, else /etc/credd/credd.yaml. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.CREDD_CONFIG;
  return fromEnv ? fromEnv : DEFAULT_CONFIG_PATH;
}

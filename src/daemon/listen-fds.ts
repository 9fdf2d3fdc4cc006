// Sockets systemd opened for credd and handed over at exec (socket activation, sd_listen_fds(3)):
// LISTEN_PID must be this process, LISTEN_FDS says how many (from fd 3 on), LISTEN_FDNAMES names
// them (FileDescriptorName= of the socket unit, ":"-separated). Read once at start and removed from
// the environment, so deploy hooks and other children do not take them for theirs.

/** The first fd systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

export interface ListenFds {
  /** The fd systemd passed under `name` (the first, should several have it), once: a second take (after a reload closed it) is undefined. */
  take(name: string): number | undefined;
  /** True when `name` was passed and taken already. */
  taken(name: string): boolean;
  /** Every name passed, for an error saying what there is. */
  names(): string[];
  /** Why none were passed, when none were: for the error of a `systemd:NAME` that is missing. */
  why: string;
}

/** Reads and removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (sd_listen_fds with unset_environment). */
export function listenFdsFrom(env: NodeJS.ProcessEnv = process.env, pid = process.pid): ListenFds {
  const forPid = env.LISTEN_PID;
  const count = env.LISTEN_FDS;
  const names = env.LISTEN_FDNAMES;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  const byName = new Map<string, number[]>();
  let why = "";
  const n = Number(count);
  if (count === undefined || forPid === undefined) why = "systemd passed no sockets (LISTEN_FDS is not set: credd was not started by a socket unit)";
  else if (Number(forPid) !== pid) why = `LISTEN_PID is ${forPid}, not credd's pid ${pid}: the sockets were meant for another process`;
  else if (!Number.isInteger(n) || n < 1) why = `LISTEN_FDS is "${count}", not a count of sockets`;
  else {
    // Without LISTEN_FDNAMES (or with too few names), systemd's name for a socket is "unknown".
    const list = (names ?? "").split(":");
    for (let i = 0; i < n; i++) {
      const name = list[i] || "unknown";
      byName.set(name, [...(byName.get(name) ?? []), LISTEN_FDS_START + i]);
    }
  }
  const taken = new Set<string>();
  return {
    take: (name) => {
      const fd = byName.get(name)?.shift();
      if (fd !== undefined) taken.add(name);
      return fd;
    },
    taken: (name) => taken.has(name),
    names: () => [...byName.keys()],
    why,
  };
}

/** None passed: for the daemon started outside systemd and for tests. */
export const NO_LISTEN_FDS: ListenFds = { take: () => undefined, taken: () => false, names: () => [], why: "systemd passed no sockets" };

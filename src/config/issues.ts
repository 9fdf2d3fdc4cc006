// Collects every problem found in one config file and turns them into one ConfigError.
// Each problem names the key path, what is wrong and what to write instead.

import { ConfigError } from "../errors.js";

/** One step into the YAML tree: a mapping key or a list index. */
export type Seg = string | number;

/** Where a value sits: its raw path (for finding the YAML line) and its label for people. */
export interface At {
  readonly raw: readonly Seg[];
  /** e.g. `credentials[fleet-prod].subject.C` */
  readonly label: string;
}

export const ROOT: At = { raw: [], label: "" };

/**
 * A step below `parent`. The path and label are worked out only when asked for, that is when a
 * problem is reported: a good file with 1,000 credentials makes some 20,000 of these.
 */
class Step implements At {
  constructor(
    private readonly parent: At,
    private readonly seg: Seg,
    private readonly name?: string,
  ) {}
  get raw(): readonly Seg[] {
    return [...this.parent.raw, this.seg];
  }
  get label(): string {
    const up = this.parent.label;
    if (typeof this.seg === "number") return `${up}[${this.name ?? this.seg}]`;
    return up ? `${up}.${this.seg}` : this.seg;
  }
}

export function child(at: At, key: string): At {
  return new Step(at, key);
}

/** A list item, labelled by its name when it has a usable one (`credentials[fleet-prod]`). */
export function item(at: At, index: number, name?: string): At {
  return new Step(at, index, name);
}

export interface Issue {
  key: string;
  problem: string;
  fix: string;
  /** 1-based line in the config file, when known. */
  line?: number;
}

/** Finds the line of a path; `ofKey` asks for the key's own line (for unknown keys). */
export type Locate = (raw: readonly Seg[], ofKey: boolean) => number | undefined;

export class Issues {
  readonly list: Issue[] = [];
  constructor(private readonly locate: Locate = () => undefined) {}

  add(at: At, problem: string, fix: string): void {
    this.push(at, problem, fix, false);
  }

  /** For problems with the key itself (unknown, forbidden): points at the key's line. */
  addKey(at: At, problem: string, fix: string): void {
    this.push(at, problem, fix, true);
  }

  private push(at: At, problem: string, fix: string, ofKey: boolean): void {
    const line = this.locate(at.raw, ofKey);
    this.list.push(line === undefined ? { key: at.label, problem, fix } : { key: at.label, problem, fix, line });
  }
}

/** Shown in full up to this many; the rest are counted. */
const MAX_SHOWN = 25;

export function formatIssue(file: string, issue: Issue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}`;
  return `${where}: ${issue.key ? `${issue.key}: ` : ""}${issue.problem}${issue.fix ? ` (fix: ${issue.fix})` : ""}`;
}

/**
 * A ConfigError carrying every problem found: `key`, `fix` and the first message line are the
 * first problem's; the message has one `FILE[:LINE]: KEY: PROBLEM (fix: FIX)` line per problem.
 */
export class ConfigInvalidError extends ConfigError {
  readonly issues: readonly Issue[];
  constructor(file: string, issues: readonly Issue[]) {
    super(file, issues[0]?.key ?? "", issues[0]?.problem ?? "invalid configuration", issues[0]?.fix ?? "");
    this.issues = issues;
    const lines = issues.slice(0, MAX_SHOWN).map((i) => formatIssue(file, i));
    if (issues.length > MAX_SHOWN) lines.push(`${file}: ... and ${issues.length - MAX_SHOWN} more problems`);
    if (lines.length > 0) this.message = lines.join("\n");
  }
}

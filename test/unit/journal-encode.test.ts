// The native journal protocol's encoding: plain `KEY=value` lines, the binary form for values with newlines.
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeJournalFields, journalFields } from "../../src/daemon/journal.js";
import { parseJournalDatagram } from "../helpers/journal.js";

test("one-line values are KEY=value lines", () => {
  assert.equal(
    encodeJournalFields([
      ["MESSAGE", "hello"],
      ["PRIORITY", "6"],
      ["CREDD_CREDENTIAL", "fleet=prod"],
    ]).toString("utf8"),
    "MESSAGE=hello\nPRIORITY=6\nCREDD_CREDENTIAL=fleet=prod\n",
  );
});

test("a value with a newline takes the binary form: KEY, newline, 64-bit LE byte length, value, newline", () => {
  const buf = encodeJournalFields([
    ["MESSAGE", "a\nb€"],
    ["PRIORITY", "3"],
  ]);
  const expected = Buffer.concat([
    Buffer.from("MESSAGE\n"),
    Buffer.from([6, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.from("a\nb€\n"),
    Buffer.from("PRIORITY=3\n"),
  ]);
  assert.deepEqual(buf, expected);
  assert.deepEqual(parseJournalDatagram(buf), [
    ["MESSAGE", "a\nb€"],
    ["PRIORITY", "3"],
  ]);
});

test("journalFields: MESSAGE is the JSON line, PRIORITY from the level, credential and event when present", () => {
  const table: [string, [string, string][] | undefined][] = [
    [
      '{"level":30,"msg":"x"}\n',
      [
        ["MESSAGE", '{"level":30,"msg":"x"}'],
        ["PRIORITY", "6"],
        ["SYSLOG_IDENTIFIER", "credd"],
      ],
    ],
    [
      '{"level":50,"credential":"fleet-prod","event":"renewal-failed","msg":"y"}\n',
      [
        ["MESSAGE", '{"level":50,"credential":"fleet-prod","event":"renewal-failed","msg":"y"}'],
        ["PRIORITY", "3"],
        ["SYSLOG_IDENTIFIER", "credd"],
        ["CREDD_CREDENTIAL", "fleet-prod"],
        ["CREDD_EVENT", "renewal-failed"],
      ],
    ],
    [
      '{"level":40,"credential":7}\n',
      [
        ["MESSAGE", '{"level":40,"credential":7}'],
        ["PRIORITY", "4"],
        ["SYSLOG_IDENTIFIER", "credd"],
      ],
    ],
    ["not json\n", undefined],
    ["[1]\n", undefined],
  ];
  for (const [line, want] of table) assert.deepEqual(journalFields(line), want, line);
});

import type { BadRecord } from "./types.js";

export interface BadSample extends BadRecord {
  /** The stage that dropped it: `read`, `filter`, `pack`, `workers`. */
  stage: string;
}

export interface BadSampleReport {
  total: number;
  byReason: Record<string, number>;
  /** The first few of each stage, so a report can name records. */
  examples: BadSample[];
}

/** What a stage's saved state holds about its bad samples. */
export interface BadLogState {
  counts: Record<string, number>;
  examples: BadSample[];
}

const MAX_EXAMPLES = 20;

/**
 * Counts the records a stage drops, by reason, keeping the first few with their ids.
 * Part of the stage's saved state, so a resumed run reports the same totals.
 */
export class BadLog {
  counts: Record<string, number> = {};
  examples: BadSample[] = [];

  constructor(
    readonly stage: string,
    private readonly onBad?: (bad: BadSample) => void,
  ) {}

  record(bad: BadRecord): void {
    const entry: BadSample = { ...bad, stage: this.stage };
    this.counts[bad.reason] = (this.counts[bad.reason] ?? 0) + 1;
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(entry);
    this.onBad?.(entry);
  }

  toJSON(): BadLogState {
    return { counts: { ...this.counts }, examples: this.examples.slice() };
  }

  load(state: BadLogState | undefined): void {
    this.counts = { ...(state?.counts ?? {}) };
    this.examples = (state?.examples ?? []).slice();
  }
}

/** Saved state of any stage: its kind, its bad-sample log, its upstream stage(s), and its own fields. */
export interface StreamState {
  stage: string;
  bad?: BadLogState;
  upstream?: StreamState | StreamState[];
  [field: string]: unknown;
}

/** Every bad sample recorded by a pipeline up to the position `state` was taken at. */
export function badSampleReport(state: StreamState): BadSampleReport {
  const report: BadSampleReport = { total: 0, byReason: {}, examples: [] };
  const visit = (s: StreamState): void => {
    if (s.bad) {
      for (const [reason, n] of Object.entries(s.bad.counts)) {
        report.byReason[reason] = (report.byReason[reason] ?? 0) + n;
        report.total += n;
      }
      report.examples.push(...s.bad.examples);
    }
    if (Array.isArray(s.upstream)) s.upstream.forEach(visit);
    else if (s.upstream) visit(s.upstream);
  };
  visit(state);
  return report;
}

/** One line per reason, e.g. `3 bad samples: 2 image-too-small (first: cauldron/a.parquet#4), 1 parse-error (...)`. */
export function formatBadSampleReport(report: BadSampleReport): string {
  if (report.total === 0) return "0 bad samples";
  const parts = Object.entries(report.byReason).map(([reason, n]) => {
    const first = report.examples.find((e) => e.reason === reason);
    return `${n} ${reason}${first ? ` (first: ${first.id}: ${first.detail})` : ""}`;
  });
  return `${report.total} bad samples: ${parts.join("; ")}`;
}

// Worker thread of `report`: analyses one capture at a time (so memory stays one capture's worth
// per worker) and posts back the per-migration records and any problems met on the way.
import { parentPort } from 'node:worker_threads';
import { analyzeCapture } from '../migration/analyze-capture';
import { defaultEnrichers } from '../migration/enrichers';
import type { MigrationRecord } from '../migration/record';

export interface AnalyzeRequest {
  file: string;
}

export interface AnalyzeReply {
  file: string;
  records: MigrationRecord[];
  problems: string[]; // damage inside the capture: results are from the readable part
  error?: string; // the capture could not be analysed at all
}

function describe(problem: unknown): string {
  if (problem instanceof Error) return problem.message;
  if (problem && typeof problem === 'object' && 'message' in problem) return String((problem as { message: unknown }).message);
  return typeof problem === 'string' ? problem : JSON.stringify(problem);
}

/** The analysis result may be a record list or an object holding one; take records + problems. */
export function unpackAnalysis(result: unknown): { records: MigrationRecord[]; problems: string[] } {
  if (Array.isArray(result)) return { records: result as MigrationRecord[], problems: [] };
  const holder = (result ?? {}) as Record<string, unknown>;
  const records = (holder.migrations ?? holder.records ?? []) as MigrationRecord[];
  const problems = (holder.problems ?? holder.errors ?? []) as unknown[];
  return { records: JSON.parse(JSON.stringify(records)) as MigrationRecord[], problems: problems.map(describe) };
}

export async function analyzeOne(file: string): Promise<AnalyzeReply> {
  try {
    const { records, problems } = unpackAnalysis(await analyzeCapture(file, { enrichers: defaultEnrichers() }));
    return { file, records, problems };
  } catch (err) {
    return { file, records: [], problems: [], error: describe(err) };
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (request: AnalyzeRequest) => {
    void analyzeOne(request.file).then((reply) => port.postMessage(reply));
  });
}

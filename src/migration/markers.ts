// The phase markers of a KVM/libvirt migration, as data (issue 5's table; prose in README.md).
// Each phase edge lists alternatives in order of preference: the first that exists in the
// capture wins. The timeline code only interprets these descriptors; change markers here.
import type { PhaseName } from './record';

/** Procedure name groups (names as in procedures.generated.ts, program "remote"). */
export const PROCEDURE_GROUPS = {
  connectOpen: ['CONNECT_OPEN'],
  connectClose: ['CONNECT_CLOSE'],
  prepare: [
    'DOMAIN_MIGRATE_PREPARE3_PARAMS',
    'DOMAIN_MIGRATE_PREPARE_TUNNEL3_PARAMS',
    'DOMAIN_MIGRATE_PREPARE3',
    'DOMAIN_MIGRATE_PREPARE_TUNNEL3',
    'DOMAIN_MIGRATE_PREPARE2',
    'DOMAIN_MIGRATE_PREPARE_TUNNEL',
    'DOMAIN_MIGRATE_PREPARE',
  ],
  tunnelPrepare: ['DOMAIN_MIGRATE_PREPARE_TUNNEL3_PARAMS', 'DOMAIN_MIGRATE_PREPARE_TUNNEL3', 'DOMAIN_MIGRATE_PREPARE_TUNNEL'],
  finish: ['DOMAIN_MIGRATE_FINISH3_PARAMS', 'DOMAIN_MIGRATE_FINISH3', 'DOMAIN_MIGRATE_FINISH2', 'DOMAIN_MIGRATE_FINISH'],
  // Calls that only a managed (client-driven) migration sends to the source daemon.
  sourceSide: ['DOMAIN_MIGRATE_BEGIN3_PARAMS', 'DOMAIN_MIGRATE_BEGIN3', 'DOMAIN_MIGRATE_PERFORM3_PARAMS', 'DOMAIN_MIGRATE_PERFORM3', 'DOMAIN_MIGRATE_PERFORM'],
  confirm: ['DOMAIN_MIGRATE_CONFIRM3_PARAMS', 'DOMAIN_MIGRATE_CONFIRM3'],
  abort: ['DOMAIN_ABORT_JOB', 'DOMAIN_ABORT_JOB_FLAGS'],
} as const;
export type ProcedureGroup = keyof typeof PROCEDURE_GROUPS;

/** Where a marker instant comes from. */
export type MarkerSource =
  /** first packet (the SYN) of the control connection to the destination daemon */
  | { kind: 'controlOpen' }
  /** a message of a procedure group on the migration's connections */
  | { kind: 'message'; group: ProcedureGroup; type: 'CALL' | 'REPLY'; which: 'first' | 'last' }
  /** first / last packet of the migration data (QEMU connection, or tunnelled STREAM messages) */
  | { kind: 'dataFirst' }
  | { kind: 'dataLast' }
  /** end of a phase that has already been placed */
  | { kind: 'phaseEnd'; phase: PhaseName }
  /** last packet (FIN/RST) of the control connection */
  | { kind: 'controlClose' };

export interface PhaseMarkers {
  phase: PhaseName;
  start: readonly MarkerSource[];
  end: readonly MarkerSource[];
}

export const KVM_PHASE_MARKERS: readonly PhaseMarkers[] = [
  {
    phase: 'remoteConnect',
    start: [{ kind: 'controlOpen' }],
    end: [{ kind: 'message', group: 'connectOpen', type: 'REPLY', which: 'first' }],
  },
  {
    phase: 'preparation',
    start: [{ kind: 'phaseEnd', phase: 'remoteConnect' }, { kind: 'message', group: 'prepare', type: 'CALL', which: 'first' }],
    end: [{ kind: 'message', group: 'prepare', type: 'REPLY', which: 'first' }],
  },
  {
    phase: 'transfer',
    start: [{ kind: 'dataFirst' }],
    end: [{ kind: 'dataLast' }],
  },
  {
    phase: 'finish',
    start: [{ kind: 'message', group: 'finish', type: 'CALL', which: 'first' }],
    end: [{ kind: 'message', group: 'finish', type: 'REPLY', which: 'first' }],
  },
  {
    phase: 'cleanup',
    // a failed migration that never reached FINISH cleans up after the PREPARE error reply
    start: [{ kind: 'phaseEnd', phase: 'finish' }, { kind: 'phaseEnd', phase: 'preparation' }],
    end: [{ kind: 'message', group: 'connectClose', type: 'REPLY', which: 'last' }, { kind: 'controlClose' }],
  },
];

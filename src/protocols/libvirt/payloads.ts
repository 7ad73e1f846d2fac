// XDR payload decoders for the procedures a migration timeline needs (remote_protocol.x):
// connection set-up, the v1/v2/v3 and *_PARAMS migrate procedures, job info/stats, domain
// events; plus the error struct of any REPLY/STREAM with status ERROR. Everything else is
// left undecoded (and unbuffered: see wantsPayload).
import { MessageStatus, MessageType, type RpcError, type RpcHeader } from './rpc';
import { REMOTE_PROGRAM } from './procedures.generated';
import { XdrReader } from './xdr';

export interface DomainRef {
  name: string;
  uuid: string;
  id: number;
}

export type TypedParamValue = number | string | boolean;
export type TypedParams = Record<string, TypedParamValue | TypedParamValue[]>;

const COOKIE_MAX = 4_194_304;
const STRING_MAX = 4_194_304;
const PARAM_LIST_MAX = 64;
const JOB_STATS_MAX = 64;

function uuidText(bytes: Uint8Array): string {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function domain(x: XdrReader): DomainRef {
  const name = x.string(STRING_MAX);
  const uuid = uuidText(x.fixedOpaque(16));
  return { name, uuid, id: x.int() };
}

const optString = (x: XdrReader): string | undefined => x.optional(() => x.string(STRING_MAX));

/** A cookie is kept as its size only (it is libvirt-internal XML; the size is what analysts compare). */
function cookieBytes(x: XdrReader): number {
  const [s, e] = x.opaqueRange(COOKIE_MAX);
  return e - s;
}

/** remote_typed_param list; repeated fields (migrate_disks, compression) become arrays. */
export function typedParams(x: XdrReader, max = PARAM_LIST_MAX): TypedParams {
  const out: TypedParams = {};
  const count = x.uint();
  if (count > max) throw new Error(`typed parameter count ${count} exceeds ${max}`);
  for (let i = 0; i < count; i++) {
    const field = x.string(STRING_MAX);
    const type = x.int();
    let value: TypedParamValue;
    switch (type) {
      case 1: value = x.int(); break; // INT
      case 2: value = x.uint(); break; // UINT
      case 3: value = x.hyper(true); break; // LLONG
      case 4: value = x.hyper(false); break; // ULLONG
      case 5: value = x.double(); break; // DOUBLE
      case 6: value = x.int() !== 0; break; // BOOLEAN
      case 7: value = x.string(STRING_MAX); break; // STRING
      default: throw new Error(`typed parameter ${field} has unknown type ${type}`);
    }
    const previous = out[field];
    if (previous === undefined) out[field] = value;
    else out[field] = Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  return out;
}

/** remote_error / virNetMessageError. */
export function decodeError(x: XdrReader): RpcError {
  const code = x.int();
  const errDomain = x.int();
  const message = optString(x);
  const level = x.int();
  x.optional(() => domain(x));
  const str1 = optString(x);
  const str2 = optString(x);
  const str3 = optString(x);
  return { code, domain: errDomain, message, level, str1, str2, str3 };
}

type Decoder = (x: XdrReader) => Record<string, unknown>;
interface ProcedureDecoders {
  call?: Decoder;
  reply?: Decoder;
  message?: Decoder;
}

/** Migration parameters in analyst terms, pulled out of the typed-param list. */
function migrateParams(params: TypedParams): Record<string, unknown> {
  const xml = params['destination_xml'];
  return {
    params,
    migrateUri: params['migrate_uri'],
    dname: params['destination_name'],
    bandwidthMiBs: params['bandwidth'],
    domainXmlBytes: typeof xml === 'string' ? Buffer.byteLength(xml) : undefined,
    domainName: typeof xml === 'string' ? /<name>([^<]*)<\/name>/.exec(xml)?.[1] : undefined,
    domainUuid: typeof xml === 'string' ? /<uuid>([^<]*)<\/uuid>/.exec(xml)?.[1] : undefined,
  };
}

function xmlFacts(xml: string): Record<string, unknown> {
  return { domainXmlBytes: Buffer.byteLength(xml), domainName: /<name>([^<]*)<\/name>/.exec(xml)?.[1], domainUuid: /<uuid>([^<]*)<\/uuid>/.exec(xml)?.[1] };
}

const jobInfoFields = ['timeElapsed', 'timeRemaining', 'dataTotal', 'dataProcessed', 'dataRemaining', 'memTotal', 'memProcessed', 'memRemaining', 'fileTotal', 'fileProcessed', 'fileRemaining'];

/** The decoders, by remote procedure number: one table, read top to bottom like remote_protocol.x. */
const REMOTE_DECODERS = new Map<number, ProcedureDecoders>([
  [1, { call: (x) => ({ name: optString(x), flags: x.uint() }) }], // CONNECT_OPEN
  [60, { call: (x) => ({ feature: x.int() }), reply: (x) => ({ supported: x.int() }) }], // CONNECT_SUPPORTS_FEATURE
  [66, { reply: (x) => ({ types: x.array(20, () => x.int()) }) }], // AUTH_LIST
  [23, { call: (x) => ({ name: x.string(STRING_MAX) }), reply: (x) => ({ dom: domain(x) }) }], // DOMAIN_LOOKUP_BY_NAME
  [24, { call: (x) => ({ uuid: uuidText(x.fixedOpaque(16)) }), reply: (x) => ({ dom: domain(x) }) }], // DOMAIN_LOOKUP_BY_UUID
  [212, { call: (x) => ({ dom: domain(x), flags: x.uint() }), reply: (x) => ({ state: x.int(), reason: x.int() }) }], // DOMAIN_GET_STATE
  // v1
  [61, { call: (x) => ({ uriIn: optString(x), flags: x.hyper(false), dname: optString(x), bandwidthMiBs: x.hyper(false) }), reply: (x) => ({ cookieBytes: cookieBytes(x), uriOut: optString(x) }) }],
  [62, { call: (x) => ({ dom: domain(x), cookieBytes: cookieBytes(x), migrateUri: x.string(STRING_MAX), flags: x.hyper(false), dname: optString(x), bandwidthMiBs: x.hyper(false) }) }],
  [63, { call: (x) => ({ dname: x.string(STRING_MAX), cookieBytes: cookieBytes(x), migrateUri: x.string(STRING_MAX), flags: x.hyper(false) }), reply: (x) => ({ dom: domain(x) }) }],
  // v2
  [108, { call: (x) => ({ uriIn: optString(x), flags: x.hyper(false), dname: optString(x), bandwidthMiBs: x.hyper(false), ...xmlFacts(x.string(STRING_MAX)) }), reply: (x) => ({ cookieBytes: cookieBytes(x), uriOut: optString(x) }) }],
  [109, { call: (x) => ({ dname: x.string(STRING_MAX), cookieBytes: cookieBytes(x), migrateUri: x.string(STRING_MAX), flags: x.hyper(false), retcode: x.int() }), reply: (x) => ({ dom: domain(x) }) }],
  [148, { call: (x) => ({ flags: x.hyper(false), dname: optString(x), bandwidthMiBs: x.hyper(false), ...xmlFacts(x.string(STRING_MAX)) }) }],
  // v3
  [213, { call: (x) => ({ dom: domain(x), xmlin: optString(x), flags: x.hyper(false), dname: optString(x), bandwidthMiBs: x.hyper(false) }), reply: (x) => ({ cookieBytes: cookieBytes(x), ...xmlFacts(x.string(STRING_MAX)) }) }],
  [214, { call: (x) => ({ cookieBytes: cookieBytes(x), uriIn: optString(x), flags: x.hyper(false), dname: optString(x), bandwidthMiBs: x.hyper(false), ...xmlFacts(x.string(STRING_MAX)) }), reply: (x) => ({ cookieBytes: cookieBytes(x), uriOut: optString(x) }) }],
  [215, { call: (x) => ({ cookieBytes: cookieBytes(x), flags: x.hyper(false), dname: optString(x), bandwidthMiBs: x.hyper(false), ...xmlFacts(x.string(STRING_MAX)) }), reply: (x) => ({ cookieBytes: cookieBytes(x) }) }],
  [216, { call: (x) => ({ dom: domain(x), xmlin: optString(x), cookieBytes: cookieBytes(x), dconnuri: optString(x), migrateUri: optString(x), flags: x.hyper(false), dname: optString(x), bandwidthMiBs: x.hyper(false) }), reply: (x) => ({ cookieBytes: cookieBytes(x) }) }],
  [217, { call: (x) => ({ dname: x.string(STRING_MAX), cookieBytes: cookieBytes(x), dconnuri: optString(x), migrateUri: optString(x), flags: x.hyper(false), cancelled: x.int() }), reply: (x) => ({ dom: domain(x), cookieBytes: cookieBytes(x) }) }],
  [218, { call: (x) => ({ dom: domain(x), cookieBytes: cookieBytes(x), flags: x.hyper(false), cancelled: x.int() }) }],
  // *_PARAMS
  [302, { call: (x) => ({ dom: domain(x), ...migrateParams(typedParams(x)), flags: x.uint() }), reply: (x) => ({ cookieBytes: cookieBytes(x), ...xmlFacts(x.string(STRING_MAX)) }) }],
  [303, { call: (x) => ({ ...migrateParams(typedParams(x)), cookieBytes: cookieBytes(x), flags: x.uint() }), reply: (x) => ({ cookieBytes: cookieBytes(x), uriOut: optString(x) }) }],
  [304, { call: (x) => ({ ...migrateParams(typedParams(x)), cookieBytes: cookieBytes(x), flags: x.uint() }), reply: (x) => ({ cookieBytes: cookieBytes(x) }) }],
  [305, { call: (x) => ({ dom: domain(x), dconnuri: optString(x), ...migrateParams(typedParams(x)), cookieBytes: cookieBytes(x), flags: x.uint() }), reply: (x) => ({ cookieBytes: cookieBytes(x) }) }],
  [306, { call: (x) => ({ ...migrateParams(typedParams(x)), cookieBytes: cookieBytes(x), flags: x.uint(), cancelled: x.int() }), reply: (x) => ({ dom: domain(x), cookieBytes: cookieBytes(x) }) }],
  [307, { call: (x) => ({ dom: domain(x), ...migrateParams(typedParams(x)), cookieBytes: cookieBytes(x), flags: x.uint(), cancelled: x.int() }) }],
  // job control
  [163, { call: (x) => ({ dom: domain(x) }), reply: (x) => { const type = x.int(); const r: Record<string, unknown> = { type }; for (const f of jobInfoFields) r[f] = x.hyper(false); return r; } }],
  [298, { call: (x) => ({ dom: domain(x), flags: x.uint() }), reply: (x) => ({ type: x.int(), params: typedParams(x, JOB_STATS_MAX) }) }],
  [164, { call: (x) => ({ dom: domain(x) }) }], // DOMAIN_ABORT_JOB
  [442, { call: (x) => ({ dom: domain(x), flags: x.uint() }) }], // DOMAIN_ABORT_JOB_FLAGS
  [207, { call: (x) => ({ dom: domain(x), bandwidthMiBs: x.hyper(false), flags: x.uint() }) }], // DOMAIN_MIGRATE_SET_MAX_SPEED
  // events (MESSAGE)
  [107, { message: (x) => ({ dom: domain(x), event: x.int(), detail: x.int() }) }],
  [318, { message: (x) => ({ callbackID: x.int(), dom: domain(x), event: x.int(), detail: x.int() }) }],
  [359, { message: (x) => ({ callbackID: x.int(), dom: domain(x), iteration: x.int() }) }],
  [363, { message: (x) => ({ callbackID: x.int(), dom: domain(x), params: typedParams(x, JOB_STATS_MAX) }) }],
]);

function decodersFor(h: RpcHeader): Decoder | undefined {
  if (h.program !== REMOTE_PROGRAM.number) return undefined;
  const d = REMOTE_DECODERS.get(h.procedure);
  if (!d) return undefined;
  if ((h.type === MessageType.CALL || h.type === MessageType.CALL_WITH_FDS)) return d.call;
  if ((h.type === MessageType.REPLY || h.type === MessageType.REPLY_WITH_FDS) && h.status === MessageStatus.OK) return d.reply;
  if (h.type === MessageType.MESSAGE) return d.message;
  return undefined;
}

function carriesError(h: RpcHeader): boolean {
  return h.status === MessageStatus.ERROR && (h.type === MessageType.REPLY || h.type === MessageType.REPLY_WITH_FDS || h.type === MessageType.STREAM);
}

export function wantsPayload(h: RpcHeader): boolean {
  return carriesError(h) || h.type === MessageType.STREAM_HOLE || decodersFor(h) !== undefined;
}

export interface DecodedPayload {
  body?: Record<string, unknown>;
  error?: RpcError;
  problem?: string;
}

/** Decode a buffered payload. *_WITH_FDS types carry an fd count (unsigned int) first. */
export function decodePayload(h: RpcHeader, payload: Uint8Array): DecodedPayload {
  const x = new XdrReader(payload);
  try {
    if (h.type === MessageType.CALL_WITH_FDS || h.type === MessageType.REPLY_WITH_FDS) x.uint();
    if (carriesError(h)) return { error: decodeError(x) };
    if (h.type === MessageType.STREAM_HOLE) return { body: { holeLength: x.hyper(true), flags: x.uint() } };
    const decode = decodersFor(h);
    return decode ? { body: decode(x) } : {};
  } catch (err) {
    return { problem: err instanceof Error ? err.message : String(err) };
  }
}

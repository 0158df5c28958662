import {
  create,
  type DescField,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  protoInt64,
  ScalarType,
  toBinary
} from "@bufbuild/protobuf"
import { isScalarZeroValue } from "@bufbuild/protobuf/reflect"
import { EmptySchema } from "@bufbuild/protobuf/wkt"

/**
 * `toBinary`, byte for byte, written into one buffer that every call reuses.
 *
 * protobuf-es's writer collects bytes in a plain array and makes a new byte array for each nested message and
 * each string, then copies them all together; a large answer (a run's details: about 300 messages and 500
 * strings) spends most of its encoding time there. This writer puts each nested message's length in one byte
 * it leaves before the message and moves the message along in the rare case its length needs more, writes
 * ASCII strings by hand and others with Node's own UTF-8 writer, and copies the result out once.
 *
 * It follows `toBinary`'s rules: fields in number order then unknown fields; implicit-presence fields left out
 * at their zero value; oneof members and explicit-presence fields written when set; repeated scalars packed
 * where the field says so; map keys read from their property names. Fields whose in-memory form is not the
 * message (wrapper types and `google.protobuf.Struct` held as plain values) and group-encoded fields are
 * written by `toBinary` itself, one field at a time. If anything throws, the whole message goes to `toBinary`,
 * so errors are the library's own. The buffer grows to the largest message written, and is let go after a
 * message larger than 1 MiB.
 */
export const encodeBinary = <Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Uint8Array => {
  pos = 0
  try {
    writeFields(planOf(schema), message as unknown as Record<string, unknown>)
  } catch {
    return toBinary(schema, message)
  }
  const encoded = new Uint8Array(pos)
  encoded.set(buf.subarray(0, pos))
  if (buf.length > KEPT_BYTES) setBuffer(Buffer.allocUnsafeSlow(FIRST_BYTES))
  return encoded
}

// ---- the buffer ----

const FIRST_BYTES = 64 * 1024
const KEPT_BYTES = 1024 * 1024

let buf: Buffer = Buffer.allocUnsafeSlow(FIRST_BYTES)
let view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
let pos = 0

const setBuffer = (next: Buffer) => {
  buf = next
  view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
}

const ensure = (bytes: number) => {
  if (pos + bytes <= buf.length) return
  let size = buf.length * 2
  while (size < pos + bytes) size *= 2
  const next = Buffer.allocUnsafeSlow(size)
  buf.copy(next, 0, 0, pos)
  setBuffer(next)
}

const uint32 = (value: number) => {
  ensure(5)
  while (value > 0x7f) {
    buf[pos++] = (value & 0x7f) | 0x80
    value >>>= 7
  }
  buf[pos++] = value
}

/** Two's-complement 64 bits as two unsigned halves, seven bits at a time. */
const varint64 = (lo: number, hi: number) => {
  ensure(10)
  lo >>>= 0
  hi >>>= 0
  while (hi !== 0 || lo > 0x7f) {
    buf[pos++] = (lo & 0x7f) | 0x80
    lo = ((lo >>> 7) | (hi << 25)) >>> 0
    hi >>>= 7
  }
  buf[pos++] = lo
}

const int32 = (value: number) => {
  if (!Number.isInteger(value) || value > 0x7fffffff || value < -0x80000000) throw new Error("invalid int32")
  if (value >= 0) uint32(value)
  else varint64(value, -1)
}

const checkedUint32 = (value: number) => {
  if (!Number.isInteger(value) || value > 0xffffffff || value < 0) throw new Error("invalid uint32")
  uint32(value)
}

const varintLength = (value: number) =>
  value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5

/** Starts a length-delimited value: one byte is left for its length. */
const openDelimited = () => {
  ensure(1)
  return pos++
}

/** Writes the length of the value begun at `start`, moving the value along if the length needs more bytes. */
const closeDelimited = (start: number) => {
  const length = pos - start - 1
  if (length < 0x80) {
    buf[start] = length
    return
  }
  const extra = varintLength(length) - 1
  ensure(extra)
  buf.copyWithin(start + 1 + extra, start + 1, pos)
  const end = pos + extra
  pos = start
  uint32(length)
  pos = end
}

const string = (value: string) => {
  const n = value.length
  if (n < 43) {
    // At most 3 bytes a UTF-16 unit, so the length fits one byte.
    ensure(1 + 3 * n)
    const start = pos++
    let i = 0
    for (; i < n; i++) {
      const code = value.charCodeAt(i)
      if (code >= 0x80) break
      buf[pos++] = code
    }
    if (i < n) pos = start + 1 + buf.write(value, start + 1, "utf8")
    buf[start] = pos - start - 1
    return
  }
  const length = Buffer.byteLength(value, "utf8")
  uint32(length)
  ensure(length)
  pos += buf.write(value, pos, "utf8")
}

const bytes = (value: Uint8Array) => {
  uint32(value.byteLength)
  ensure(value.byteLength)
  buf.set(value, pos)
  pos += value.byteLength
}

// ---- the plan of each message type ----

const enum WireType {
  Varint = 0,
  Bit64 = 1,
  LengthDelimited = 2,
  Bit32 = 5
}

/** How one field is read from a message and written; made once per field. */
type FieldPlan = {
  readonly local: string
  readonly oneof: string | undefined
  /** Written only when not its zero value (else: when set). */
  readonly implicit: boolean
  readonly required: boolean
  readonly isSet: (value: unknown) => boolean
  readonly write: (value: unknown) => void
}

type MessagePlan = { readonly fields: ReadonlyArray<FieldPlan> }

const plans = new WeakMap<DescMessage, MessagePlan>()

const planOf = (schema: DescMessage): MessagePlan => {
  let plan = plans.get(schema)
  if (plan === undefined) {
    const fields: Array<FieldPlan> = []
    plan = { fields }
    plans.set(schema, plan) // before the fields, for recursive types
    for (const field of [...schema.fields].sort((a, b) => a.number - b.number)) fields.push(fieldPlan(schema, field))
  }
  return plan
}

const IMPLICIT = 2
const LEGACY_REQUIRED = 3

const fieldPlan = (schema: DescMessage, field: DescField): FieldPlan => {
  const implicit = field.oneof === undefined && field.presence === IMPLICIT
  return {
    local: field.localName,
    oneof: field.oneof?.localName,
    implicit,
    required: field.presence === LEGACY_REQUIRED,
    isSet: implicit ? implicitIsSet(field) : () => true,
    write: fieldWriter(schema, field)
  }
}

const implicitIsSet = (field: DescField): ((value: unknown) => boolean) => {
  switch (field.fieldKind) {
    case "list":
      return (value) => (value as ReadonlyArray<unknown>).length > 0
    case "map":
      return (value) => Object.keys(value as object).length > 0
    case "scalar": {
      const scalar = field.scalar
      return (value) => !isScalarZeroValue(scalar, value)
    }
    case "enum": {
      const zero = field.enum.values[0]?.number ?? 0
      return (value) => value !== zero
    }
    case "message":
      return (value) => value !== undefined
  }
}

const WRAPPERS = new Set([
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue"
])

/** A message type held in memory as something else (a plain value or a JSON object) in this field. */
const heldAsPlainValue = (schema: DescMessage, field: DescField, message: DescMessage) =>
  (message.typeName === "google.protobuf.Struct" && schema.typeName !== "google.protobuf.Value") ||
  (field.fieldKind === "message" && field.oneof === undefined && WRAPPERS.has(message.typeName))

const tagOf = (number: number, wireType: WireType) => ((number << 3) | wireType) >>> 0

const fieldWriter = (schema: DescMessage, field: DescField): FieldPlan["write"] => {
  switch (field.fieldKind) {
    case "scalar":
      return scalarWriter(field.number, field.scalar)
    case "enum": {
      const tag = tagOf(field.number, WireType.Varint)
      return (value) => {
        uint32(tag)
        int32(value as number)
      }
    }
    case "message": {
      if (field.delimitedEncoding || heldAsPlainValue(schema, field, field.message)) return byLibrary(schema, field)
      const tag = tagOf(field.number, WireType.LengthDelimited)
      const child = field.message
      return (value) => {
        uint32(tag)
        const start = openDelimited()
        writeFields(planOf(child), value as Record<string, unknown>)
        closeDelimited(start)
      }
    }
    case "list": {
      if (field.listKind === "message") {
        if (field.delimitedEncoding || heldAsPlainValue(schema, field, field.message)) return byLibrary(schema, field)
        const tag = tagOf(field.number, WireType.LengthDelimited)
        const child = field.message
        return (value) => {
          const plan = planOf(child)
          for (const item of value as ReadonlyArray<Record<string, unknown>>) {
            uint32(tag)
            const start = openDelimited()
            writeFields(plan, item)
            closeDelimited(start)
          }
        }
      }
      const scalar = field.listKind === "enum" ? ScalarType.INT32 : field.scalar
      if (field.packed) {
        const tag = tagOf(field.number, WireType.LengthDelimited)
        const item = scalarValueWriter(scalar)
        return (value) => {
          const list = value as ReadonlyArray<unknown>
          if (list.length === 0) return
          uint32(tag)
          const start = openDelimited()
          for (const element of list) item(element)
          closeDelimited(start)
        }
      }
      const item = scalarWriter(field.number, scalar)
      return (value) => {
        for (const element of value as ReadonlyArray<unknown>) item(element)
      }
    }
    case "map": {
      if (field.mapKind === "message" && heldAsPlainValue(schema, field, field.message)) return byLibrary(schema, field)
      const tag = tagOf(field.number, WireType.LengthDelimited)
      const keyType = field.mapKey
      const writeKey = scalarWriter(1, keyType)
      const key = keyType === ScalarType.STRING ? writeKey : (k: string) => writeKey(mapKeyOf(k, keyType))
      const entry: (value: unknown) => void =
        field.mapKind === "message"
          ? messageValueWriter(field.message)
          : scalarWriter(2, field.mapKind === "enum" ? ScalarType.INT32 : field.scalar)
      return (value) => {
        const map = value as Record<string, unknown>
        for (const k of Object.keys(map)) {
          uint32(tag)
          const start = openDelimited()
          key(k)
          entry(map[k])
          closeDelimited(start)
        }
      }
    }
  }
}

/** A map key as the object holds it (a property name) to the key's type, as protobuf-es's reflection reads it. */
const mapKeyOf = (key: string, type: ScalarType): unknown => {
  switch (type) {
    case ScalarType.INT32:
    case ScalarType.FIXED32:
    case ScalarType.UINT32:
    case ScalarType.SFIXED32:
    case ScalarType.SINT32: {
      const n = Number.parseInt(key)
      return Number.isFinite(n) ? n : key
    }
    case ScalarType.BOOL:
      return key === "true" ? true : key === "false" ? false : key
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return protoInt64.uParse(key)
    default:
      return protoInt64.parse(key)
  }
}

const messageValueWriter = (schema: DescMessage) => {
  const tag = tagOf(2, WireType.LengthDelimited)
  return (value: unknown) => {
    uint32(tag)
    const start = openDelimited()
    writeFields(planOf(schema), value as Record<string, unknown>)
    closeDelimited(start)
  }
}

/** The field as `toBinary` writes it, from a message of the same type holding that field alone. */
const byLibrary = (schema: DescMessage, field: DescField): FieldPlan["write"] => (value) => {
  const single = create(schema) as unknown as Record<string, unknown>
  if (field.oneof !== undefined) single[field.oneof.localName] = { case: field.localName, value }
  else single[field.localName] = value
  const encoded = toBinary(schema, single as MessageShape<DescMessage>)
  ensure(encoded.byteLength)
  buf.set(encoded, pos)
  pos += encoded.byteLength
}

const wireTypeOf = (scalar: ScalarType): WireType => {
  switch (scalar) {
    case ScalarType.BYTES:
    case ScalarType.STRING:
      return WireType.LengthDelimited
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return WireType.Bit32
    default:
      return WireType.Varint
  }
}

const scalarWriter = (number: number, scalar: ScalarType) => {
  const tag = tagOf(number, wireTypeOf(scalar))
  const write = scalarValueWriter(scalar)
  return (value: unknown) => {
    uint32(tag)
    write(value)
  }
}

type Long = bigint | string | number

const fixed = (size: 4 | 8, put: (value: never) => void) => (value: unknown) => {
  ensure(size)
  put(value as never)
  pos += size
}

const scalarValueWriter = (scalar: ScalarType): ((value: unknown) => void) => {
  switch (scalar) {
    case ScalarType.STRING:
      return (value) => string(value as string)
    case ScalarType.BYTES:
      return (value) => bytes(value as Uint8Array)
    case ScalarType.BOOL:
      return (value) => {
        ensure(1)
        buf[pos++] = value ? 1 : 0
      }
    case ScalarType.INT32:
      return (value) => int32(value as number)
    case ScalarType.UINT32:
      return (value) => checkedUint32(value as number)
    case ScalarType.SINT32:
      return (value) => {
        const n = value as number
        if (!Number.isInteger(n) || n > 0x7fffffff || n < -0x80000000) throw new Error("invalid int32")
        uint32(((n << 1) ^ (n >> 31)) >>> 0)
      }
    case ScalarType.INT64:
      return (value) => {
        const { lo, hi } = protoInt64.enc(value as Long)
        varint64(lo, hi)
      }
    case ScalarType.UINT64:
      return (value) => {
        const { lo, hi } = protoInt64.uEnc(value as Long)
        varint64(lo, hi)
      }
    case ScalarType.SINT64:
      return (value) => {
        const { lo, hi } = protoInt64.enc(value as Long)
        const sign = hi >> 31
        varint64((lo << 1) ^ sign, ((hi << 1) | (lo >>> 31)) ^ sign)
      }
    case ScalarType.DOUBLE:
      return fixed(8, (value: number) => view.setFloat64(pos, value, true))
    case ScalarType.FLOAT:
      return fixed(4, (value: number) => {
        if (typeof value !== "number" || (Number.isFinite(value) && Math.abs(value) > 3.4028234663852886e38)) {
          throw new Error("invalid float32")
        }
        view.setFloat32(pos, value, true)
      })
    case ScalarType.FIXED32:
      return fixed(4, (value: number) => {
        if (!Number.isInteger(value) || value > 0xffffffff || value < 0) throw new Error("invalid uint32")
        view.setUint32(pos, value, true)
      })
    case ScalarType.SFIXED32:
      return fixed(4, (value: number) => {
        if (!Number.isInteger(value) || value > 0x7fffffff || value < -0x80000000) throw new Error("invalid int32")
        view.setInt32(pos, value, true)
      })
    case ScalarType.FIXED64:
      return fixed(8, (value: Long) => {
        const { lo, hi } = protoInt64.uEnc(value)
        view.setInt32(pos, lo, true)
        view.setInt32(pos + 4, hi, true)
      })
    case ScalarType.SFIXED64:
      return fixed(8, (value: Long) => {
        const { lo, hi } = protoInt64.enc(value)
        view.setInt32(pos, lo, true)
        view.setInt32(pos + 4, hi, true)
      })
  }
}

// ---- writing a message ----

type Unknown = ReadonlyArray<{ readonly no: number; readonly wireType: number; readonly data: Uint8Array }>

const hasOwn = Object.prototype.hasOwnProperty

function writeFields(plan: MessagePlan, message: Record<string, unknown>): void {
  for (const f of plan.fields) {
    let value: unknown
    if (f.oneof !== undefined) {
      const selected = message[f.oneof] as { case: string | undefined; value?: unknown } | undefined
      if (selected === undefined || selected.case !== f.local) continue
      value = selected.value
    } else {
      value = message[f.local]
      if (f.implicit) {
        if (!f.isSet(value)) continue
      } else if (value === undefined || !hasOwn.call(message, f.local)) {
        if (f.required) throw new Error("required field not set")
        continue
      }
    }
    f.write(value)
  }
  const unknown = message.$unknown as Unknown | undefined
  if (unknown !== undefined) {
    for (const { no, wireType, data } of unknown) {
      uint32(tagOf(no, wireType))
      ensure(data.byteLength)
      buf.set(data, pos)
      pos += data.byteLength
    }
  }
}

/**
 * For a response in the binary format: a message of the same type that carries `message`'s encoding as unknown
 * fields (each top-level field split off, nothing nested decoded). Connect's `toBinary` writes unknown fields
 * back as they are, so the response goes out as `encodeBinary` wrote it.
 */
export const binaryMessage = <Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>
): MessageShape<Desc> => {
  const carrier = create(schema)
  const fields = fromBinary(EmptySchema, encodeBinary(schema, message)).$unknown
  if (fields !== undefined) carrier.$unknown = fields
  return carrier
}

/**
 * How a handler's answer goes to Connect: as it is for JSON, as `binaryMessage` for the binary format (a
 * message or its init shape; Connect would make the same message of an init shape).
 */
export const responseWriter = <Desc extends DescMessage>(schema: Desc, binary: boolean) =>
  binary
    ? (value: MessageInitShape<Desc>): MessageInitShape<Desc> => binaryMessage(schema, create(schema, value))
    : (value: MessageInitShape<Desc>): MessageInitShape<Desc> => value

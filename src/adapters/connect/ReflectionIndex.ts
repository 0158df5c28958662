import { type DescEnum, type DescExtension, type DescFile, type DescMessage, type DescService, toBinary } from "@bufbuild/protobuf"
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt"

/**
 * The protobuf files behind a set of services, with every file they import, indexed the ways gRPC server
 * reflection asks: by file name, by fully qualified symbol (message, field, oneof, enum, enum value, service,
 * method, extension) and by extended message and extension number.
 */
export interface ReflectionIndex {
  readonly services: ReadonlyArray<string>
  readonly byFileName: ReadonlyMap<string, DescFile>
  readonly bySymbol: ReadonlyMap<string, DescFile>
  /** Extended message's full name → extension number → the file that declares the extension. */
  readonly extensions: ReadonlyMap<string, ReadonlyMap<number, DescFile>>
}

const parentScope = (typeName: string) => typeName.slice(0, Math.max(0, typeName.lastIndexOf(".")))

export const makeReflectionIndex = (services: ReadonlyArray<DescService>): ReflectionIndex => {
  const byFileName = new Map<string, DescFile>()
  const bySymbol = new Map<string, DescFile>()
  const extensions = new Map<string, Map<number, DescFile>>()

  const addEnum = (file: DescFile, desc: DescEnum) => {
    bySymbol.set(desc.typeName, file)
    // Enum values are scoped beside their enum (C++ scoping rules), not inside it.
    const scope = parentScope(desc.typeName)
    for (const value of desc.values) bySymbol.set(scope === "" ? value.name : `${scope}.${value.name}`, file)
  }
  const addExtension = (file: DescFile, desc: DescExtension) => {
    bySymbol.set(desc.typeName, file)
    const numbers = extensions.get(desc.extendee.typeName) ?? new Map<number, DescFile>()
    numbers.set(desc.number, file)
    extensions.set(desc.extendee.typeName, numbers)
  }
  const addMessage = (file: DescFile, desc: DescMessage) => {
    bySymbol.set(desc.typeName, file)
    for (const field of desc.fields) bySymbol.set(`${desc.typeName}.${field.name}`, file)
    for (const oneof of desc.oneofs) bySymbol.set(`${desc.typeName}.${oneof.name}`, file)
    for (const nested of desc.nestedMessages) addMessage(file, nested)
    for (const nested of desc.nestedEnums) addEnum(file, nested)
    for (const nested of desc.nestedExtensions) addExtension(file, nested)
  }
  const addFile = (file: DescFile) => {
    const name = file.proto.name
    if (byFileName.has(name)) return
    byFileName.set(name, file)
    for (const dependency of file.dependencies) addFile(dependency)
    for (const message of file.messages) addMessage(file, message)
    for (const desc of file.enums) addEnum(file, desc)
    for (const desc of file.extensions) addExtension(file, desc)
    for (const service of file.services) {
      bySymbol.set(service.typeName, file)
      for (const method of service.methods) bySymbol.set(`${service.typeName}.${method.name}`, file)
    }
  }
  for (const service of services) addFile(service.file)

  const names = Array.from(new Set(services.map((service) => service.typeName))).sort()
  return { services: names, byFileName, bySymbol, extensions }
}

/**
 * `file` encoded, then every file it imports (transitively) that this stream has not sent yet, as gRPC
 * reflection answers: a client asks for a file and must be able to resolve its imports from what it got.
 * `sent` records what went out on the stream.
 */
export const fileWithDependencies = (file: DescFile, sent: Set<string>): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  const queue: Array<DescFile> = [file]
  const queued = new Set<string>([file.proto.name])
  for (let i = 0; i < queue.length; i++) {
    const current = queue[i]
    if (i === 0 || !sent.has(current.proto.name)) {
      sent.add(current.proto.name)
      out.push(toBinary(FileDescriptorProtoSchema, current.proto))
    }
    for (const dependency of current.dependencies) {
      if (!queued.has(dependency.proto.name)) {
        queued.add(dependency.proto.name)
        queue.push(dependency)
      }
    }
  }
  return out
}

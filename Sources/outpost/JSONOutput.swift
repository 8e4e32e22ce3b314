import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore

/// JSON on stdout, one document per command, keys sorted so output is stable.
enum JSONOutput {
    static func print(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        write(Array(try encoder.encode(value)))
    }

    /// `object` is built from dictionaries, arrays, strings, numbers, bools, `JSONValue`s and nils.
    static func print(object: Any) throws {
        write(try value(object).encoded())
    }

    static func value(_ any: Any) throws -> JSONValue {
        switch any {
        case let v as JSONValue: return v
        case let s as String: return .string(s)
        case let b as Bool: return .bool(b)
        case let i as Int: return .number(Double(i))
        case let i as Int64: return .number(Double(i))
        case let i as Int32: return .number(Double(i))
        case let i as UInt64: return .number(Double(i))
        case let d as Double: return .number(d)
        case let f as Float: return .number(Double("\(f)") ?? Double(f)) // Float's shortest digits
        case let a as [Any]: return .array(try a.map(value))
        case let o as [String: Any]: return .object(try o.mapValues(value))
        case let o as Optional<Any>:
            guard let some = o else { return .null }
            return try value(some)
        default: throw CLIError("internal: \(type(of: any)) is not JSON")
        }
    }

    private static func write(_ bytes: [UInt8]) {
        StandardStreams.out(bytes + [UInt8(ascii: "\n")])
    }
}

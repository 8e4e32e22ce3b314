import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Any JSON value, decoded strictly: `true` is never a number and `1` never a bool, so a field of
/// the wrong type is reported rather than coerced.
public enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    /// Parses `data`; throws `QueryError.malformed` with the reason and the byte offset.
    /// Strict RFC 8259: one value (any type) with optional whitespace around it, UTF-8 only, no
    /// duplicate member names (a signed config or request with two meanings is refused), no
    /// numbers that do not fit a Double, nesting at most `maxDepth` deep.
    public static func parse(_ data: Data) throws(QueryError) -> JSONValue {
        let result: Result<JSONValue, QueryError> = data.withUnsafeBytes { raw in
            var parser = JSONParser(raw.bindMemory(to: UInt8.self))
            do throws(JSONParser.Failure) {
                return .success(try parser.parseDocument())
            } catch {
                // A number out of a Double's range is bad input for one field, not broken JSON:
                // the error names the member it was given for, as every other bad field does.
                if let member = error.member {
                    return .failure(.invalidParameter(member, "is out of range: \(error.reason)"))
                }
                return .failure(.malformed("the body is not valid JSON: \(error.reason) at byte \(error.offset)"))
            }
        }
        return try result.get()
    }

    public static let maxDepth = 256
}

/// The strict parser behind `JSONValue.parse`: a single pass over the bytes, no Foundation.
struct JSONParser {
    struct Failure: Error {
        let reason: String
        let offset: Int
        /// The object member whose value this failure is about, for a number out of range.
        var member: String? = nil
        var isOutOfRange: Bool { reason == JSONParser.outOfRange }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    mutating func parseDocument() throws(Failure) -> JSONValue {
        skipWhitespace()
        guard i < bytes.count else { throw fail(bytes.isEmpty ? "empty input" : "no value") }
        let value = try parseValue()
        skipWhitespace()
        guard i == bytes.count else { throw fail("unexpected data after the value") }
        return value
    }

    private func fail(_ reason: String) -> Failure { Failure(reason: reason, offset: i) }

    static let outOfRange = "the number does not fit a 64-bit float"

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(Failure) -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail("unexpected character \(Self.describe(bytes[i]))")
        }
    }

    private static func describe(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x" + hexString([byte])
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count, memcmp(bytes.baseAddress! + i, word.utf8Start, n) == 0 else {
            throw fail("invalid literal")
        }
        i += n
    }

    private mutating func enter() throws(Failure) {
        depth += 1
        guard depth <= JSONValue.maxDepth else { throw fail("nested deeper than \(JSONValue.maxDepth) levels") }
    }

    private mutating func parseArray() throws(Failure) -> JSONValue {
        try enter()
        i += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1; depth -= 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            guard i < bytes.count else { throw fail("unterminated array") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                skipWhitespace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { throw fail("a trailing comma in an array") }
                continue
            }
            if bytes[i] == UInt8(ascii: "]") { i += 1; break }
            throw fail("expected ',' or ']' in an array")
        }
        depth -= 1
        return .array(items)
    }

    private mutating func parseObject() throws(Failure) -> JSONValue {
        try enter()
        i += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1; depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a member name in quotes") }
            let nameOffset = i
            let name = try parseString()
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after a member name") }
            i += 1
            skipWhitespace()
            let value: JSONValue
            do throws(Failure) {
                value = try parseValue()
            } catch {
                var failure = error
                if failure.isOutOfRange, failure.member == nil { failure.member = name }
                throw failure
            }
            guard members.updateValue(value, forKey: name) == nil else {
                throw Failure(reason: "duplicate member \"\(name.prefix(64))\"", offset: nameOffset)
            }
            skipWhitespace()
            guard i < bytes.count else { throw fail("unterminated object") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                skipWhitespace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { throw fail("a trailing comma in an object") }
                continue
            }
            if bytes[i] == UInt8(ascii: "}") { i += 1; break }
            throw fail("expected ',' or '}' in an object")
        }
        depth -= 1
        return .object(members)
    }

    private mutating func parseString() throws(Failure) -> String {
        i += 1 // opening quote
        let start = i
        // Fast path: no escapes; the bytes only need to be valid UTF-8.
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                guard let s = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self) else {
                    throw Failure(reason: "a string is not valid UTF-8", offset: start)
                }
                i += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw fail("unescaped control character in a string") }
            i += 1
        }
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<i]))
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw Failure(reason: "a string is not valid UTF-8", offset: start)
                }
                i += 1
                return s
            case UInt8(ascii: "\\"):
                i += 1
                guard i < bytes.count else { break }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw fail("a high surrogate escape without its low half")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("a high surrogate escape without its low half") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail("a low surrogate escape without its high half")
                    }
                    out.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar)!)!)
                default:
                    i -= 1
                    throw fail("invalid escape")
                }
            default:
                if b < 0x20 { throw fail("unescaped control character in a string") }
                out.append(b)
                i += 1
            }
        }
        throw Failure(reason: "unterminated string", offset: start - 1)
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("a \\u escape needs four hex digits") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("a \\u escape needs four hex digits")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    private mutating func parseNumber() throws(Failure) -> Double {
        let start = i
        func digit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, digit(bytes[i]) else { throw fail("a number needs digits") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count, digit(bytes[i]) { throw fail("a number cannot have leading zeros") }
        } else {
            while i < bytes.count, digit(bytes[i]) { i += 1 }
        }
        var integral = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            integral = false
            i += 1
            guard i < bytes.count, digit(bytes[i]) else { throw fail("a number needs digits after '.'") }
            while i < bytes.count, digit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            integral = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, digit(bytes[i]) else { throw fail("a number needs digits in its exponent") }
            while i < bytes.count, digit(bytes[i]) { i += 1 }
        }
        let text = UnsafeBufferPointer(rebasing: bytes[start..<i])
        // Short integers (the common case: max_tokens, seeds, versions) without going through text.
        if integral, text.count <= 15 {
            var v: Int64 = 0
            var negative = false
            for b in text {
                if b == UInt8(ascii: "-") { negative = true } else { v = v * 10 + Int64(b - UInt8(ascii: "0")) }
            }
            return Double(negative ? -v : v)
        }
        // Neither overflow to infinity nor underflow of non-zero digits to zero is a faithful reading.
        let mantissa = text.prefix { $0 != UInt8(ascii: "e") && $0 != UInt8(ascii: "E") }
        guard let d = Double(String(decoding: text, as: UTF8.self)), d.isFinite,
              d != 0 || !mantissa.contains(where: { $0 >= UInt8(ascii: "1") && $0 <= UInt8(ascii: "9") })
        else {
            throw Failure(reason: Self.outOfRange, offset: start)
        }
        return d
    }
}

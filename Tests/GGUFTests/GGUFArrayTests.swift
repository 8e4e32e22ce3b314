import Foundation
import OutpostTesting
import Testing
@testable import GGUF

/// Metadata arrays stay encoded in the file's mapping until read: they must decode to the values
/// written, be refused at open when malformed (with the errors the eager parser gave), and stay
/// readable for as long as they are held.
@Suite struct GGUFArrayTests {
    /// One array per element type (100 elements, with each type's extremes), empty arrays, and
    /// nested arrays.
    static let arrays: [(String, GGUFValue)] = {
        func array(_ type: GGUFValueType, _ edges: [GGUFValue], _ element: (Int) -> GGUFValue) -> GGUFValue {
            .array(elementType: type, values: edges + (edges.count..<100).map(element))
        }
        return [
            ("u8", array(.uint8, [.uint8(0), .uint8(.max)]) { .uint8(UInt8(truncatingIfNeeded: $0 * 37)) }),
            ("i8", array(.int8, [.int8(.min), .int8(.max)]) { .int8(Int8(truncatingIfNeeded: $0 * 37)) }),
            ("u16", array(.uint16, [.uint16(.max)]) { .uint16(UInt16($0 * 601)) }),
            ("i16", array(.int16, [.int16(.min), .int16(.max)]) { .int16(Int16($0 * -301)) }),
            ("u32", array(.uint32, [.uint32(.max)]) { .uint32(UInt32($0) * 40_000_000) }),
            ("i32", array(.int32, [.int32(.min), .int32(.max)]) { .int32(Int32($0 * -20_000_000)) }),
            ("u64", array(.uint64, [.uint64(.max)]) { .uint64(UInt64($0) << 56) }),
            ("u64-small", array(.uint64, []) { .uint64(UInt64($0) * 1_000_000_007) }),
            ("i64", array(.int64, [.int64(.min), .int64(.max)]) { .int64(Int64($0) * -1_000_000_000_007) }),
            ("f32", array(.float32, [.float32(.infinity), .float32(-.infinity), .float32(-0.0),
                                     .float32(.leastNonzeroMagnitude), .float32(.greatestFiniteMagnitude)]) {
                .float32(Float($0) * -0.375)
            }),
            ("f64", array(.float64, [.float64(.infinity), .float64(.leastNonzeroMagnitude)]) { .float64(Double($0) / 3) }),
            ("bool", array(.bool, []) { .bool($0 % 3 == 0) }),
            ("string", array(.string, [.string(""), .string("héllo ✓"), .string(String(repeating: "x", count: 300))]) {
                .string("tok\($0)")
            }),
            ("nested", .array(elementType: .array, values: [
                .array(elementType: .string, values: [.string("a"), .string("bc")]),
                .array(elementType: .uint8, values: []),
                .array(elementType: .array, values: [.array(elementType: .float64, values: [.float64(1.5)])]),
                .array(elementType: .int32, values: (0..<70).map { .int32(Int32($0)) }),
            ])),
        ] + GGUFValueType.allCases.map { ("empty-\($0)", .array(elementType: $0, values: [GGUFValue]())) }
    }()

    /// What the typed accessors gave when arrays were decoded at open: every element converted,
    /// or nil when one does not convert.
    static func reference<T>(_ values: [GGUFValue], _ convert: (GGUFValue) -> T?) -> [T]? {
        var out: [T] = []
        for v in values {
            guard let t = convert(v) else { return nil }
            out.append(t)
        }
        return out
    }

    static func elements(_ value: GGUFValue?) -> GGUFArray? {
        if case .array(_, let values)? = value { return values }
        return nil
    }

    static func isEncoded(_ values: GGUFArray) -> Bool {
        if case .encoded = values.storage { return true }
        return false
    }

    @Test func everyElementTypeDecodesToTheValuesWritten() throws {
        var w = GGUFWriter()
        for (k, v) in Self.arrays { w.add(k, v) }
        let f = try GGUFFile(bytes: w.bytes(), name: "mem")
        for (k, v) in Self.arrays {
            guard case .array(let type, let written) = v, case .array(let parsedType, let parsed)? = f.metadata[k] else {
                Issue.record("\(k) is not an array")
                continue
            }
            let expected = Array(written)
            #expect(Self.isEncoded(parsed), "\(k)")
            #expect(parsedType == type, "\(k)")
            #expect(f.metadata[k] == v, "\(k)")
            #expect(parsed.count == expected.count, "\(k)")
            #expect(f.arrayCount(k) == expected.count, "\(k)")
            #expect(Array(parsed) == expected, "\(k)")
            #expect(f.array(k) == expected, "\(k)")
            #expect(parsed.map(\.summary) == expected.map(\.summary), "\(k)")  // a second pass over the same indices
            #expect(parsed.first == expected.first, "\(k)")
            #expect(parsed.description == expected.description, "\(k)")
            #expect(f.stringArray(k) == Self.reference(expected) { $0.stringValue }, "\(k)")
            #expect(f.intArray(k) == Self.reference(expected) { $0.intValue }, "\(k)")
            #expect(f.floatArray(k) == Self.reference(expected) { $0.doubleValue.map(Float.init) }, "\(k)")
            // The typed decoders of a decoded array agree with those reading the file.
            #expect(written.stringValues() == parsed.stringValues(), "\(k)")
            #expect(written.intValues() == parsed.intValues(), "\(k)")
            #expect(written.floatValues() == parsed.floatValues(), "\(k)")
        }
        #expect(f.intArray("u64") == nil)  // UInt64.max does not fit in Int
        #expect(f.intArray("u64-small") == (0..<100).map { $0 * 1_000_000_007 })
        #expect(f.floatArray("f32")?.prefix(3) == [.infinity, -.infinity, 0])
        #expect(f.stringArray("string")?[1] == "héllo ✓")
        #expect(f.stringArray("i32") == nil)
        #expect(f.stringArray("empty-int32") == [])  // no element that is not a string
        #expect(f.floatArray("bool") == nil)
        #expect(f.arrayCount("u8") == 100 && f.arrayCount("nonexistent") == nil)

        // A nested array read from the file is itself encoded.
        let nested = try #require(Self.elements(f.metadata["nested"]))
        let inner = try #require(Self.elements(nested.first))
        #expect(Self.isEncoded(inner))
        #expect(inner.stringValues() == ["a", "bc"])
        let last = try #require(Self.elements(Array(nested)[3]))
        #expect(last.intValues() == Array(0..<70))
    }

    @Test func equalityComparesElements() throws {
        var w = GGUFWriter()
        for (k, v) in Self.arrays { w.add(k, v) }
        let a = try GGUFFile(bytes: w.bytes(), name: "a"), b = try GGUFFile(bytes: w.bytes(), name: "b")
        for (k, _) in Self.arrays { #expect(a.metadata[k] == b.metadata[k], "\(k)") }  // two mappings
        #expect(a.metadata["i32"] != a.metadata["u32"])
        #expect(a.metadata["i32"] != .array(elementType: .int32, values: [.int32(.min)]))
        var changed = Array(try #require(Self.elements(a.metadata["string"])))
        changed[99] = .string("tok98")
        #expect(a.metadata["string"] != .array(elementType: .string, values: changed))
    }

    /// Strings are not checked for UTF-8: invalid sequences are repaired with U+FFFD, in arrays as
    /// in single values.
    @Test func invalidUTF8IsRepairedAsInSingleStrings() throws {
        var w = GGUFWriter()
        w.addRaw("one", .string, le(UInt64(3)) + [0x61, 0xFF, 0x62])
        w.addRaw("many", .array, le(GGUFValueType.string.rawValue) + le(UInt64(2))
                 + le(UInt64(3)) + [0x61, 0xFF, 0x62] + le(UInt64(2)) + [0xC3, 0xA9])
        let f = try GGUFFile(bytes: w.bytes(), name: "mem")
        #expect(f.string("one") == "a\u{FFFD}b")
        #expect(f.stringArray("many") == ["a\u{FFFD}b", "é"])
        #expect(f.array("many") == [.string("a\u{FFFD}b"), .string("é")])
    }

    // MARK: Malformed arrays

    /// A v3 image with one metadata entry `k` and nothing after it (no padding), so that the
    /// bytes left at each point are known.
    static func image(_ type: GGUFValueType, _ encoded: [UInt8]) -> [UInt8] {
        Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(1)) + GGUFWriter.encodeString("k")
            + le(type.rawValue) + encoded
    }

    /// Where `k`'s value starts in `image`.
    static let valueOffset = 24 + 8 + 1 + 4

    static func arrayHeader(_ type: GGUFValueType, _ count: UInt64) -> [UInt8] { le(type.rawValue) + le(count) }

    /// Image → offset and description of the error, as the parser that decoded arrays at open
    /// reported them.
    static let malformed: [(String, [UInt8], Int, String)] = {
        let v = valueOffset
        let s = GGUFWriter.encodeString
        return [
            ("string length past the end",
             image(.array, arrayHeader(.string, 3) + s("a") + s("bc") + le(UInt64(1000)) + [UInt8](repeating: 0, count: 16)),
             v + 31, "value of \"k\" length 1000 cannot fit in the 16 bytes left in the file"),
            ("bool that is not 0 or 1",
             image(.array, arrayHeader(.bool, 8) + [0, 1, 0, 1, 1, 2, 0, 0]),
             v + 17, "bool value 2 for key \"k\" (must be 0 or 1)"),
            ("arrays nested five deep",
             image(.array, Array([[UInt8]](repeating: arrayHeader(.array, 1), count: 4).joined()) + arrayHeader(.uint8, 0)),
             v + 48, "arrays nested too deeply in key \"k\""),
            ("invalid element type in a nested array",
             image(.array, arrayHeader(.array, 1) + le(UInt32(13)) + le(UInt64(0))),
             v + 12, "invalid metadata value type 13 for key \"k\""),
            ("invalid element type",
             image(.array, le(UInt32(99)) + le(UInt64(0))),
             v, "invalid metadata value type 99 for key \"k\""),
            ("nested count past the end",
             image(.array, arrayHeader(.array, 1) + arrayHeader(.uint32, 1 << 40) + [UInt8](repeating: 0, count: 8)),
             v + 16, "array length of \"k\" 1099511627776 cannot fit in the 8 bytes left in the file"),
            ("numbers past the end",
             image(.array, arrayHeader(.int32, 4) + [UInt8](repeating: 0, count: 12)),
             v + 4, "array length of \"k\" 4 cannot fit in the 12 bytes left in the file"),
            ("string length prefix cut",
             image(.array, arrayHeader(.string, 2) + s("a") + [UInt8](repeating: 0, count: 7)),
             v + 21, "truncated: value of \"k\" needs 8 bytes but the file ends at \(v + 28)"),
            ("element type cut",
             image(.array, [9, 0]),
             v, "truncated: array element type of \"k\" needs 4 bytes but the file ends at \(v + 2)"),
        ]
    }()

    @Test(arguments: malformed)
    func malformedArrayIsRefusedAtOpen(name: String, image: [UInt8], offset: Int, detail: String) throws {
        let error = try #require(throws: GGUFError.self, "\(name)") { try GGUFFile(bytes: image, name: "mem") }
        #expect(error.isMalformed)
        #expect(error.offset == offset, "\(name)")
        #expect(error.description == "mem: at offset \(offset): \(detail)", "\(name)")
    }

    @Test func arraysNestedFourDeepAreRead() throws {
        let encoded = Array([[UInt8]](repeating: Self.arrayHeader(.array, 1), count: 3).joined())
            + Self.arrayHeader(.uint8, 2) + [7, 9]
        let f = try GGUFFile(bytes: Self.image(.array, encoded), name: "mem")
        let innermost = GGUFValue.array(elementType: .uint8, values: [.uint8(7), .uint8(9)])
        let expected = (0..<3).reduce(innermost) { v, _ in .array(elementType: .array, values: [v]) }
        #expect(f.metadata["k"] == expected)
    }

    // MARK: Lifetime

    @Test func arraysStayReadableAfterTheFileIsReleased() throws {
        var w = GGUFWriter()
        let tokens = (0..<1000).map { "tok\($0)" }
        w.add("tokens", .array(elementType: .string, values: tokens.map { .string($0) }))
        w.add("scores", .array(elementType: .float32, values: (0..<1000).map { .float32(Float($0) / 8) }))
        weak var weakFile: GGUFFile?
        weak var weakMapping: GGUFMapping?
        var held: (tokens: GGUFValue?, scores: GGUFValue?)
        do {
            let f = try GGUFFile(bytes: w.bytes(), name: "mem")
            weakFile = f
            weakMapping = f.mapping
            held = (f.metadata["tokens"], f.metadata["scores"])
        }
        #expect(weakFile == nil)
        #expect(weakMapping != nil)  // held by the arrays
        #expect(Self.elements(held.tokens)?.stringValues() == tokens)
        #expect(held.tokens?.arrayValue == tokens.map { .string($0) })
        #expect(Self.elements(held.scores)?.floatValues() == (0..<1000).map { Float($0) / 8 })
        held = (nil, nil)
        #expect(weakMapping == nil)  // the last array gone, the copy is freed
    }

    /// The same with the default model mapped from disk: the header pages are dropped when the
    /// file is released and fault back in when the array is read.
    @Test func mappedArraysStayReadableAfterTheFileIsReleased() throws {
        let path = try TestModel.path()
        var tokens: GGUFValue?
        var expected: [String]?
        do {
            let f = try GGUFFile(path: path)
            expected = f.stringArray("tokenizer.ggml.tokens")
            tokens = f.metadata["tokenizer.ggml.tokens"]
        }
        let values = try #require(Self.elements(tokens))
        #expect(values.count == 49152)
        #expect(values.stringValues() == expected)
        #expect(Array(values)[1] == .string("<|im_start|>"))
    }

    // MARK: Real vocabularies

    /// The direct decoders agree with decoding every element, on the default model and Gemma 3.
    @Test func typedDecodersAgreeWithElementDecodingOnRealModels() throws {
        let smol = try GGUFFile(path: try TestModel.path())
        for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.merges"] {
            let values = try #require(smol.array(key))
            #expect(smol.stringArray(key) == values.map { $0.stringValue! }, "\(key)")
        }
        #expect(smol.intArray("tokenizer.ggml.token_type") == smol.array("tokenizer.ggml.token_type")?.map { $0.intValue! })

        let gemma = try GGUFFile(path: try TestModel.gemmaPath())
        #expect(gemma.arrayCount("tokenizer.ggml.tokens") == 262_144)
        let tokens = try #require(gemma.stringArray("tokenizer.ggml.tokens"))
        #expect(tokens == gemma.array("tokenizer.ggml.tokens")?.map { $0.stringValue! })
        #expect(tokens.contains("<0x80>"))
        let scores = try #require(gemma.floatArray("tokenizer.ggml.scores"))
        #expect(scores.count == 262_144)
        let decoded = try #require(gemma.array("tokenizer.ggml.scores")).map { v -> UInt32 in
            guard case .float32(let x) = v else { return 0 }
            return x.bitPattern
        }
        #expect(scores.map(\.bitPattern) == decoded)
        let types = try #require(gemma.intArray("tokenizer.ggml.token_type"))
        #expect(types == gemma.array("tokenizer.ggml.token_type")?.map { $0.intValue! })
    }
}

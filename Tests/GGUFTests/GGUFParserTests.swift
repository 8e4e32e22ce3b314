import Testing
@testable import GGUF

@Suite struct GGUFParserTests {
    static let everyType: [(String, GGUFValue)] = [
        ("u8", .uint8(200)), ("i8", .int8(-100)), ("u16", .uint16(60000)), ("i16", .int16(-30000)),
        ("u32", .uint32(4_000_000_000)), ("i32", .int32(-2_000_000_000)),
        ("u64", .uint64(18_000_000_000_000_000_000)), ("i64", .int64(-9_000_000_000_000_000_000)),
        ("f32", .float32(1.5)), ("f64", .float64(-2.25)), ("yes", .bool(true)), ("no", .bool(false)),
        ("s", .string("héllo ✓")), ("empty", .string("")),
        ("strings", .array(elementType: .string, values: [.string("a"), .string("bc")])),
        ("ints", .array(elementType: .int32, values: [.int32(1), .int32(-2), .int32(3)])),
        ("nested", .array(elementType: .array, values: [
            .array(elementType: .uint8, values: [.uint8(1)]),
            .array(elementType: .uint8, values: []),
        ])),
        ("none", .array(elementType: .float32, values: [])),
    ]

    @Test(arguments: [UInt32(2), 3])
    func everyMetadataTypeRoundTrips(version: UInt32) throws {
        var w = GGUFWriter()
        w.version = version
        for (k, v) in Self.everyType { w.add(k, v) }
        let f = try GGUFFile(bytes: w.bytes(), name: "mem")
        #expect(f.version == version)
        #expect(f.metadataKeys == Self.everyType.map(\.0))
        for (k, v) in Self.everyType { #expect(f.metadata[k] == v, "\(k)") }
        #expect(f.int("u64") == nil)  // does not fit in Int
        #expect(f.int("i64") == -9_000_000_000_000_000_000)
        #expect(f.stringArray("strings") == ["a", "bc"])
        #expect(f.intArray("ints") == [1, -2, 3])
        #expect(f.double("f32") == 1.5)
        #expect(f.tensors.isEmpty)
    }

    @Test func customAlignmentPlacesData() throws {
        var w = GGUFWriter()
        w.alignment = 64
        w.add("general.alignment", .uint32(64))
        w.addTensor("x", dims: [4], type: 0, data: [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0])
        w.addTensor("y", dims: [32, 2], type: 2, data: [UInt8](repeating: 7, count: 36))
        let f = try GGUFFile(bytes: w.bytes(), name: "mem")
        #expect(f.alignment == 64)
        #expect(f.dataOffset % 64 == 0)
        let y = try #require(f.tensor(named: "y"))
        #expect(y.relativeOffset == 64)
        #expect(y.rowCount == 2)
        #expect(y.rowByteCount == 18)
        #expect(try f.data(for: y).allSatisfy { $0 == 7 })
    }

    @Test func unknownTensorTypeFailsOnlyWhenUsed() throws {
        var w = GGUFWriter()
        w.addTensor("future", dims: [16], type: 77, data: [UInt8](repeating: 0, count: 32))
        w.addTensor("known", dims: [8], type: 0, data: [UInt8](repeating: 0, count: 32))
        let f = try GGUFFile(bytes: w.bytes(), name: "mem")
        #expect(try f.data(named: "known").count == 32)
        let future = try #require(f.tensor(named: "future"))
        #expect(future.type.name == "type77")
        let error = try #require(throws: GGUFError.self) { try f.data(for: future) }
        #expect(error.isUnknownTensorType)
        #expect(error.description.contains("ggml type 77"))
        #expect(ModelSummary(f).tensorTypes == ["type77": 1, "F32": 1])
    }

    @Test func truncationAtEveryOffsetIsAnError() throws {
        var w = GGUFWriter()
        for (k, v) in Self.everyType { w.add(k, v) }
        w.addTensor("t", dims: [32], type: 8, data: [UInt8](repeating: 1, count: 34))
        let full = w.bytes()
        _ = try GGUFFile(bytes: full, name: "full")
        for cut in 0..<full.count - 30 {  // the last 30 bytes are alignment padding after the data
            #expect(throws: GGUFError.self, "cut at \(cut)") { try GGUFFile(bytes: full[0..<cut], name: "cut") }
        }
    }
}

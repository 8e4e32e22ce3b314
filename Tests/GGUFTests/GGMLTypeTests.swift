import Testing
@testable import GGUF

@Suite struct GGMLTypeTests {
    @Test func blockLayoutsMatchGGML() {
        #expect(GGMLType.q4_0.layout == .init(blockSize: 32, bytesPerBlock: 18))
        #expect(GGMLType.q4_1.layout == .init(blockSize: 32, bytesPerBlock: 20))
        #expect(GGMLType.q8_0.layout == .init(blockSize: 32, bytesPerBlock: 34))
        #expect(GGMLType.q8_1.layout == .init(blockSize: 32, bytesPerBlock: 36))
        #expect(GGMLType(rawValue: 14).layout == .init(blockSize: 256, bytesPerBlock: 210))
        #expect(GGMLType.f32.name == "F32")
    }

    @Test func removedAndFutureIdsAreUnknown() {
        for raw: UInt32 in [4, 5, 31, 32, 33, 36, 37, 38, 40, 1000] {
            let t = GGMLType(rawValue: raw)
            #expect(!t.isKnown)
            #expect(t.layout == nil)
            #expect(t.name == "type\(raw)")
        }
    }
}

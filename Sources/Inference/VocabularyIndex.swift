/// Byte strings (token texts) back to back, with an open-addressing hash index from text to id.
/// About 1.2 MB for a 49k vocabulary, where `[String: Int32]` plus `[String]` took several MB.
struct VocabularyIndex: Sendable {
    private let bytes: [UInt8]
    private let offsets: [Int32]
    /// Token id per slot, -1 for empty; a power-of-two count at most half full.
    private let slots: [Int32]
    /// The longest token text, in bytes: no longer text can be a token.
    let maxLength: Int

    init(_ texts: [String]) {
        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(texts.count + 1)
        var maxLength = 0
        for t in texts {
            bytes.append(contentsOf: t.utf8)
            offsets.append(Int32(bytes.count))
            maxLength = max(maxLength, Int(offsets[offsets.count - 1] - offsets[offsets.count - 2]))
        }
        var capacity = 16
        while capacity < texts.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        for id in 0..<texts.count {
            let text = bytes[Int(offsets[id])..<Int(offsets[id + 1])]
            var i = Int(truncatingIfNeeded: Self.hash(text)) & mask
            while slots[i] >= 0 {
                let other = Int(slots[i])
                if bytes[Int(offsets[other])..<Int(offsets[other + 1])].elementsEqual(text) { break } // a later duplicate wins
                i = (i + 1) & mask
            }
            slots[i] = Int32(id)
        }
        self.bytes = bytes
        self.offsets = offsets
        self.slots = slots
        self.maxLength = maxLength
    }

    var count: Int { offsets.count - 1 }

    func text(_ id: Int) -> ArraySlice<UInt8> {
        guard id >= 0 && id < count else { return [] }
        return bytes[Int(offsets[id])..<Int(offsets[id + 1])]
    }

    func id(of text: some Collection<UInt8>) -> Int32? {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: Self.hash(text)) & mask
        while slots[i] >= 0 {
            let id = Int(slots[i])
            if bytes[Int(offsets[id])..<Int(offsets[id + 1])].elementsEqual(text) { return Int32(id) }
            i = (i + 1) & mask
        }
        return nil
    }

    /// FNV-1a, 64-bit.
    private static func hash(_ text: some Collection<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}

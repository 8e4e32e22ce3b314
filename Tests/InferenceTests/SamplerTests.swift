import Testing
@testable import Inference

@Suite struct SamplerTests {
    func sample(_ logits: [Float], _ p: SamplerSettings, history: [Int32] = []) throws -> Int32 {
        var s = try Sampler(p)
        return logits.withUnsafeBufferPointer { s.sample($0, history: history) }
    }

    @Test func greedyTiesGoToLowestId() throws {
        #expect(try sample([1, 3, 3, 2], .greedy) == 1)
        #expect(try sample([5, 3, 5], .greedy) == 0)
    }

    @Test func repetitionPenaltyChangesGreedyChoice() throws {
        let p = SamplerSettings(repetitionPenalty: 2)
        #expect(try sample([1, 3, 2], p, history: [1]) == 2)
        #expect(try sample([1, 3, 2], p, history: []) == 1)
    }

    @Test func topKOneIsGreedy() throws {
        for seed in 0..<20 {
            let p = SamplerSettings(temperature: 1.5, topK: 1, topP: 1, minP: 0, seed: UInt64(seed))
            #expect(try sample([0.1, 2, 1.9, -1], p) == 1)
        }
    }

    @Test func minPDropsUnlikelyTokens() throws {
        for seed in 0..<50 {
            let p = SamplerSettings(temperature: 1, topK: 0, topP: 1, minP: 0.5, seed: UInt64(seed))
            // exp(-5) relative probability is far below 0.5 of the best: only ids 0 and 1 remain.
            let id = try sample([3, 3, -2, -2], p)
            #expect(id == 0 || id == 1)
        }
    }

    @Test func topPKeepsTheNucleus() throws {
        for seed in 0..<50 {
            let p = SamplerSettings(temperature: 1, topK: 0, topP: 0.5, minP: 0, seed: UInt64(seed))
            #expect(try sample([10, 0, 0, 0], p) == 0)
        }
    }

    @Test func seedsAreReproducibleAndVary() throws {
        let logits: [Float] = (0..<100).map { Float($0 % 7) * 0.3 }
        let p = SamplerSettings(temperature: 1, topK: 0, topP: 1, minP: 0, seed: 7)
        var a = try Sampler(p), b = try Sampler(p)
        var seqA: [Int32] = [], seqB: [Int32] = []
        logits.withUnsafeBufferPointer { buf in
            for _ in 0..<32 { seqA.append(a.sample(buf)); seqB.append(b.sample(buf)) }
        }
        #expect(seqA == seqB)
        #expect(Set(seqA).count > 3)
    }

    @Test func invalidParametersThrow() {
        #expect(throws: InferenceError.self) { try Sampler(SamplerSettings(topP: 0)) }
        #expect(throws: InferenceError.self) { try Sampler(SamplerSettings(topK: -1)) }
        #expect(throws: InferenceError.self) { try Sampler(SamplerSettings(temperature: .nan)) }
    }
}

@Suite struct StreamingTests {
    /// Token pieces that split characters are held back until complete: every chunk is valid
    /// text and the chunks add up to the original.
    @Test func piecesNeverSplitCharacters() throws {
        let tokenizer = try TestSupport.tokenizer.get()
        let text = "emoji 😀👍🏽 日本語 family 👨‍👩‍👧‍👦 🇫🇷"
        let ids = tokenizer.encode(text)
        var decoder = UTF8StreamDecoder()
        var chunks: [String] = []
        var splitSomewhere = false
        for id in ids {
            let bytes = tokenizer.piece(id)
            if String(validating: Array(bytes), as: UTF8.self) == nil { splitSomewhere = true }
            chunks.append(decoder.append(bytes))
        }
        chunks.append(decoder.finish())
        #expect(splitSomewhere, "the test text should have tokens that split characters")
        #expect(!chunks.joined().contains("\u{FFFD}"))
        #expect(chunks.joined() == text)
    }

    @Test func invalidBytesBecomeReplacementCharacters() {
        var d = UTF8StreamDecoder()
        #expect(d.append([0x61, 0xF0, 0x9F]) == "a")
        #expect(d.append([0x98]) == "")
        #expect(d.append([0x80, 0x62]) == "😀b")
        #expect(d.append([0xFF]) == "\u{FFFD}")
        #expect(d.append([0xE6, 0x97]) == "")
        #expect(d.finish() == "\u{FFFD}")
    }

    @Test func stopStringHelpers() {
        #expect(Generator.longestStopPrefixSuffix("Hello <|", ["<|im_end|>"]) == 2)
        #expect(Generator.longestStopPrefixSuffix("Hello", ["<|im_end|>"]) == 0)
        let text = "abc STOP def"
        #expect(Generator.firstStop(in: text, ["STOP", "def"]).map { String(text[..<$0]) } == "abc ")
    }
}

import Testing
@testable import OutpostCore

@Suite struct CacheKeyTests {
    let fingerprint = "sha256:7a3c0f00aa"
    let template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"

    func key(_ messages: [ChatMessage], _ sampling: SamplingParameters = SamplingParameters(),
             namespace: String = "default", fingerprint: String? = nil, template: String? = nil) -> CacheKey {
        CacheKey.derive(modelFingerprint: fingerprint ?? self.fingerprint, chatTemplate: template ?? self.template,
                        messages: messages, sampling: sampling, namespace: namespace)
    }

    @Test func knownVector() {
        // Pinned so that a change of the canonical encoding cannot go unnoticed: gateways running
        // different builds must agree on keys.
        let k = key([ChatMessage(role: "user", content: "What is the capital of France?")])
        #expect(k.hex == CacheKeyTests.pinned)
        #expect(k.hex.count == 64)
    }

    // Computed independently (Python hashlib over the documented encoding).
    static let pinned = "e53cde5f0cc8b1732c3a9d38c32de5e3279ce283d84736388a2ab1d4c27b9ee4"

    @Test func normalisationGivesTheSameKey() {
        let a = key([ChatMessage(role: "user", content: "Hello\nworld")])
        let b = key([ChatMessage(role: " User ", content: "  Hello\r\nworld \n")])
        #expect(a == b)
        // NFC and NFD spellings of "é".
        let nfc = key([ChatMessage(role: "user", content: "caf\u{E9}")])
        let nfd = key([ChatMessage(role: "user", content: "cafe\u{301}")])
        #expect(nfc == nfd)
    }

    @Test func everyFieldChangesTheKey() {
        let base = key([ChatMessage(role: "user", content: "hi")])
        #expect(base != key([ChatMessage(role: "user", content: "hi!")]))
        #expect(base != key([ChatMessage(role: "system", content: "hi")]))
        #expect(base != key([ChatMessage(role: "user", content: "hi")], namespace: "other"))
        #expect(base != key([ChatMessage(role: "user", content: "hi")], fingerprint: "sha256:other"))
        #expect(base != key([ChatMessage(role: "user", content: "hi")], template: "other"))
        #expect(base != key([ChatMessage(role: "user", content: "hi")], SamplingParameters(maxTokens: 10)))
        #expect(base != key([ChatMessage(role: "user", content: "hi")], SamplingParameters(temperature: 0.7, seed: 1)))
        // Boundaries between fields cannot be shifted to forge a collision.
        #expect(key([ChatMessage(role: "user", content: "ab")]) != key([ChatMessage(role: "usera", content: "b")]))
        #expect(key([ChatMessage(role: "user", content: "a"), ChatMessage(role: "user", content: "b")])
                != key([ChatMessage(role: "user", content: "a\nb")]))
    }

    @Test func greedyIgnoresParametersThatDoNotChangeTheOutput() {
        let m = [ChatMessage(role: "user", content: "hi")]
        #expect(key(m, SamplingParameters(temperature: 0, topK: 1, topP: 0.5, seed: 9)) == key(m, SamplingParameters()))
        #expect(key(m, SamplingParameters(temperature: 0.8, seed: 1)) != key(m, SamplingParameters(temperature: 0.8, seed: 2)))
        #expect(key(m, SamplingParameters(temperature: 0.8, topK: 10, seed: 1))
                != key(m, SamplingParameters(temperature: 0.8, topK: 20, seed: 1)))
    }

    @Test func hexRoundTripAndValidation() throws {
        let k = key([ChatMessage(role: "user", content: "x")])
        #expect(try CacheKey(hex: k.hex) == k)
        #expect(try CacheKey(bytes: k.bytes) == k)
        #expect(throws: QueryError.self) { try CacheKey(hex: "abc") }
        #expect(throws: QueryError.self) { try CacheKey(hex: String(repeating: "g", count: 64)) }
        #expect(throws: QueryError.self) { try CacheKey(hex: k.hex.uppercased()) }
    }

    @Test func queryValidation() throws {
        #expect(throws: QueryError.self) { try Query(messages: []) }
        #expect(throws: QueryError.self) {
            try Query(messages: [ChatMessage(role: "user", content: "x")], sampling: SamplingParameters(temperature: -1))
        }
        #expect(throws: QueryError.self) {
            try Query(messages: [ChatMessage(role: "user", content: "x")], sampling: SamplingParameters(topP: .nan))
        }
        #expect(throws: QueryError.self) { try Query(messages: [ChatMessage(role: "user", content: "x")], namespace: "") }
        #expect(throws: QueryError.self) { try Query(messages: [ChatMessage(role: "user", content: "x")], tags: ["a\u{1F}b"]) }
        let q = try Query(messages: [ChatMessage(role: "user", content: "x")], tags: ["b", "a", "b"])
        #expect(q.tags == ["a", "b"])
        #expect(q.isCacheable)
        let sampled = try Query(messages: [ChatMessage(role: "user", content: "x")], sampling: SamplingParameters(temperature: 1))
        #expect(!sampled.isCacheable)
    }
}

@Suite struct HLCTests {
    @Test func tickIsStrictlyMonotonicWhateverTheWallClock() {
        var clock = HLC()
        var previous = HLCTimestamp.zero
        for wall: UInt64 in [1000, 1000, 999, 500, 1001, 1001, 2000, 1] {
            let t = clock.tick(wallMillis: wall)
            #expect(t > previous)
            previous = t
        }
        #expect(previous.wallMillis == 2000)
        #expect(previous.logical == 1)
    }

    @Test func receiveMovesPastTheRemoteReading() throws {
        var clock = HLC()
        _ = clock.tick(wallMillis: 1000)
        let remote = HLCTimestamp(wallMillis: 5000, logical: 7)
        let t = try clock.receive(remote, wallMillis: 1001)
        #expect(t > remote)
        #expect(t == HLCTimestamp(wallMillis: 5000, logical: 8))
        #expect(clock.tick(wallMillis: 1002) > t)
        // A later wall clock wins again.
        #expect(clock.tick(wallMillis: 9000) == HLCTimestamp(wallMillis: 9000, logical: 0))
    }

    @Test func receiveRefusesFarFutureReadings() {
        var clock = HLC(maxDriftMillis: 1000)
        let error = #expect(throws: HLCError.self) {
            try clock.receive(HLCTimestamp(wallMillis: 10_000, logical: 0), wallMillis: 1000)
        }
        #expect(error?.isDrift == true)
        #expect(clock.last == .zero)
    }

    @Test func logicalOverflowCarries() {
        var clock = HLC(last: HLCTimestamp(wallMillis: 10, logical: HLCTimestamp.maxLogical))
        let t = clock.tick(wallMillis: 10)
        #expect(t == HLCTimestamp(wallMillis: 11, logical: 0))
    }

    @Test func encodings() throws {
        let t = HLCTimestamp(wallMillis: 1_764_000_000_123, logical: 42)
        #expect(t.description == "1764000000123.42")
        #expect(HLCTimestamp(t.description) == t)
        #expect(HLCTimestamp(String(t.rawValue)) == t)
        #expect(HLCTimestamp("1.2.3") == nil)
        #expect(HLCTimestamp(wallMillis: 1, logical: 0) > HLCTimestamp(wallMillis: 0, logical: HLCTimestamp.maxLogical))
    }

    @Test func sharedClockIsMonotonicAcrossThreads() async {
        let clock = HybridLogicalClock(wallClock: { 1000 })
        let readings = await withTaskGroup(of: [HLCTimestamp].self) { group in
            for _ in 0..<4 { group.addTask { (0..<1000).map { _ in clock.tick() } } }
            var all: [HLCTimestamp] = []
            for await part in group {
                #expect(part == part.sorted())
                all += part
            }
            return all
        }
        #expect(Set(readings).count == 4000)
    }
}

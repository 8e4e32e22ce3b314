import OutpostCore
@testable import AnswerCache

/// A distinct key per integer.
func testKey(_ n: Int, _ salt: String = "") -> CacheKey {
    CacheKey.derive(modelFingerprint: "test-model", chatTemplate: "t",
                    messages: [ChatMessage(role: "user", content: "question \(n) \(salt)")],
                    sampling: SamplingParameters(), namespace: "default")
}

func testEntry(_ n: Int, hlc: UInt64, namespace: String = "default", tags: [String] = [], text: String? = nil,
               expires: UInt64 = .max, staleUntil: UInt64 = .max) -> CachedEntry {
    CachedEntry(key: testKey(n), answer: Answer(text: text ?? "answer \(n)"), namespace: namespace, tags: tags,
                hlc: HLCTimestamp(rawValue: hlc), createdMillis: 0, expiresMillis: expires, staleUntilMillis: staleUntil)
}

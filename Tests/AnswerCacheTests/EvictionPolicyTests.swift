@testable import AnswerCache
import Foundation
import OutpostCore
import Testing

/// The eviction rules in one place (`EvictionPolicy`), and the memory tier following them.
@Suite struct EvictionPolicyTests {
    static func entry(_ n: Int, text: String, tags: [String] = []) -> CachedEntry {
        let key = CacheKey.derive(modelFingerprint: "m", chatTemplate: "t", messages: [ChatMessage(role: "user", content: "q\(n)")],
                                  sampling: SamplingParameters(), namespace: "ns")
        return CachedEntry(key: key, answer: Answer(text: text), namespace: "ns", tags: tags, hlc: HLCTimestamp(rawValue: 1),
                           createdMillis: 0, expiresMillis: .max, staleUntilMillis: .max)
    }

    @Test func budgetsCostsAndTargets() {
        let p = EvictionPolicy(memoryBudgetBytes: 1000, diskBudgetBytes: 10_000)
        // Text, namespace, each tag plus 16, and 128 of overhead.
        #expect(EvictionPolicy.memoryCost(of: Self.entry(1, text: "hello", tags: ["ab", "c"])) == 128 + 5 + 2 + (2 + 16) + (1 + 16))
        #expect(p.keepsInMemory(cost: 1000) && !p.keepsInMemory(cost: 1001))
        #expect(!p.memoryIsOverBudget(1000) && p.memoryIsOverBudget(1001))
        #expect(!p.diskIsOverBudget(10_000) && p.diskIsOverBudget(10_001))
        #expect(p.diskTargetBytes == 9000)
        #expect(EvictionPolicy.diskEvictionBatch(storedEntries: 10) == 32)
        #expect(EvictionPolicy.diskEvictionBatch(storedEntries: 1600) == 100)
        #expect(EvictionPolicy(memoryBudgetBytes: -5, diskBudgetBytes: 1).memoryBudgetBytes == 0)
        #expect(EvictionPolicy(memoryBudgetBytes: 1, diskBudgetBytes: 5).shrinksDisk(from: p))
        #expect(!EvictionPolicy(memoryBudgetBytes: 1, diskBudgetBytes: 20_000).shrinksDisk(from: p))
    }

    @Test func theMemoryTierEvictsTheLeastRecentlyUsedFirstAndKeepsNothingTooBig() {
        let cost = EvictionPolicy.memoryCost(of: Self.entry(0, text: String(repeating: "x", count: 100)))
        var tier = MemoryTier(budgetBytes: cost * 3)
        let entries = (0..<4).map { Self.entry($0, text: String(repeating: "x", count: 100)) }
        for e in entries.prefix(3) { tier.insert(e) }
        _ = tier.get(entries[0].key)  // 0 is now the most recent; 1 the least
        tier.insert(entries[3])
        #expect(tier.peek(entries[1].key) == nil)
        #expect(tier.peek(entries[0].key) != nil && tier.peek(entries[2].key) != nil && tier.peek(entries[3].key) != nil)
        // Costing more than the whole budget: not kept, and nothing else is evicted for it.
        tier.insert(Self.entry(9, text: String(repeating: "y", count: cost * 3)))
        #expect(tier.peek(Self.entry(9, text: "").key) == nil)
        #expect(tier.peek(entries[0].key) != nil && tier.peek(entries[2].key) != nil && tier.peek(entries[3].key) != nil)
        // A smaller budget evicts at once, least recently used first.
        tier.apply(EvictionPolicy(memoryBudgetBytes: cost, diskBudgetBytes: 1 << 30))
        #expect(tier.peek(entries[3].key) != nil && tier.peek(entries[0].key) == nil && tier.peek(entries[2].key) == nil)
    }
}

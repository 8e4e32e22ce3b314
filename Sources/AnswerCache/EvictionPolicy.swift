import OutpostCore

/// How the answer cache makes room, in one place: what each tier evicts first, the budgets it
/// holds to, and how far below them it goes. Both tiers hold the policy in force;
/// `AnswerCache.reconfigure` hands them a new one.
///
/// - Memory (`MemoryTier`): least recently *used* first. A lookup or a fill makes an entry the
///   most recent. Each entry is charged `memoryCost(of:)`; one costing more than the whole budget
///   is not kept (and replaces nothing); over budget, entries go one at a time from the least
///   recently used until the tier is within it. A budget of 0 keeps nothing in memory.
/// - Disk (`AnswerStore`): least recently *accessed* first, by `last_access_ms` (set by a fill,
///   raised by the touches of lookups that the flusher writes, indexed by `entries_last_access`).
///   Checked after each flush and when the budget shrinks; over budget, a sixteenth of the entries
///   (at least 32) goes per transaction until the file uses at most 90 % of the budget, so the
///   flushes that follow do not each evict again.
struct EvictionPolicy: Sendable, Equatable {
    static let defaultMemoryBudgetBytes = 64 << 20
    static let defaultDiskBudgetBytes = 1 << 30

    /// What the memory tier may hold, in `memoryCost(of:)` bytes; never negative.
    private(set) var memoryBudgetBytes: Int
    /// What the SQLite file may use: its pages in use (not the free list) times the page size.
    private(set) var diskBudgetBytes: Int

    init(memoryBudgetBytes: Int = Self.defaultMemoryBudgetBytes, diskBudgetBytes: Int = Self.defaultDiskBudgetBytes) {
        self.memoryBudgetBytes = max(0, memoryBudgetBytes)
        self.diskBudgetBytes = diskBudgetBytes
    }

    /// The budgets of `settings`.
    init(_ settings: AnswerCache.Settings) {
        self.init(memoryBudgetBytes: settings.memoryBudgetBytes, diskBudgetBytes: settings.diskBudgetBytes)
    }

    // MARK: Memory: least recently used first

    /// What the memory tier charges for an entry: the text, the labels and a fixed overhead for
    /// the node, the dictionary slot and the strings' headers.
    static func memoryCost(of entry: CachedEntry) -> Int {
        128 + entry.answer.text.utf8.count + entry.namespace.utf8.count + entry.tags.reduce(0) { $0 + $1.utf8.count + 16 }
    }

    /// Whether an entry of `cost` may be kept in memory at all.
    func keepsInMemory(cost: Int) -> Bool { cost <= memoryBudgetBytes }

    /// Whether a memory tier holding `bytes` must evict its least recently used entry.
    func memoryIsOverBudget(_ bytes: Int) -> Bool { bytes > memoryBudgetBytes }

    // MARK: Disk: least recently accessed first

    /// Whether a file using `usedBytes` must be evicted from.
    func diskIsOverBudget(_ usedBytes: Int64) -> Bool { usedBytes > Int64(diskBudgetBytes) }

    /// Where an eviction from disk stops: 90 % of the budget.
    var diskTargetBytes: Int64 { Int64(diskBudgetBytes) * 9 / 10 }

    /// Entries deleted per eviction transaction, of `storedEntries`: a sixteenth, at least 32.
    static func diskEvictionBatch(storedEntries: Int64) -> Int64 { max(32, storedEntries / 16) }

    /// Deletes the `?1` least recently accessed entries.
    static let diskEvictionSQL = "DELETE FROM entries WHERE id IN (SELECT id FROM entries ORDER BY last_access_ms LIMIT ?1)"

    /// Whether the file must be checked at once on going from `old` to this policy (the disk
    /// budget shrank; a larger one needs nothing until the next flush).
    func shrinksDisk(from old: EvictionPolicy) -> Bool { diskBudgetBytes < old.diskBudgetBytes }
}

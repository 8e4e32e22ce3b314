import OutpostCore

/// The memory tier: entries in order of use, evicted as `EvictionPolicy` says (least recently used
/// first, within its memory budget). A plain value; the cache keeps it behind its lock. Nodes live
/// in one array linked by index, so a hit costs one dictionary lookup and a few index moves.
struct MemoryTier: Sendable {
    private struct Node: Sendable {
        var entry: CachedEntry?
        var cost: Int
        var previous: Int
        var next: Int
    }

    private(set) var policy: EvictionPolicy
    private var nodes: [Node] = []
    private var index: [CacheKey: Int] = [:]
    private var free: [Int] = []
    /// Most recently used node, least recently used node; -1 when empty.
    private var head = -1
    private var tail = -1
    private(set) var bytes = 0
    private(set) var evictions = 0

    init(policy: EvictionPolicy) {
        self.policy = policy
    }

    /// A tier with `budgetBytes` of memory.
    init(budgetBytes: Int) {
        self.init(policy: EvictionPolicy(memoryBudgetBytes: budgetBytes))
    }

    var budgetBytes: Int { policy.memoryBudgetBytes }

    var count: Int { index.count }

    /// Changes the policy; when the budget shrinks, least recently used entries are evicted at once.
    mutating func apply(_ policy: EvictionPolicy) {
        self.policy = policy
        evictOverBudget()
    }

    /// The entry, marked most recently used.
    mutating func get(_ key: CacheKey) -> CachedEntry? {
        guard let i = index[key] else { return nil }
        moveToFront(i)
        return nodes[i].entry
    }

    func peek(_ key: CacheKey) -> CachedEntry? {
        index[key].flatMap { nodes[$0].entry }
    }

    /// Inserts or replaces, then evicts least recently used entries until within budget.
    /// An entry larger than the whole budget is not kept (and replaces nothing).
    mutating func insert(_ entry: CachedEntry) {
        let cost = entry.memoryCost
        if let i = index[entry.key] {
            if !policy.keepsInMemory(cost: cost) {
                remove(entry.key)
                return
            }
            bytes += cost - nodes[i].cost
            nodes[i].entry = entry
            nodes[i].cost = cost
            moveToFront(i)
        } else {
            guard policy.keepsInMemory(cost: cost) else { return }
            let node = Node(entry: entry, cost: cost, previous: -1, next: -1)
            let i: Int
            if let reused = free.popLast() {
                nodes[reused] = node
                i = reused
            } else {
                nodes.append(node)
                i = nodes.count - 1
            }
            index[entry.key] = i
            bytes += cost
            linkAtFront(i)
        }
        evictOverBudget()
    }

    private mutating func evictOverBudget() {
        while policy.memoryIsOverBudget(bytes), tail != -1 {
            evictions += 1
            removeNode(tail)
        }
    }

    @discardableResult
    mutating func remove(_ key: CacheKey) -> CachedEntry? {
        guard let i = index[key] else { return nil }
        let entry = nodes[i].entry
        removeNode(i)
        return entry
    }

    /// Removes every entry for which `predicate` holds; returns how many.
    @discardableResult
    mutating func removeAll(where predicate: (CachedEntry) -> Bool) -> Int {
        let doomed = index.compactMap { key, i -> CacheKey? in
            guard let entry = nodes[i].entry, predicate(entry) else { return nil }
            return key
        }
        for key in doomed { remove(key) }
        return doomed.count
    }

    /// Keys from most to least recently used (for tests).
    var keysByRecency: [CacheKey] {
        var out: [CacheKey] = []
        var i = head
        while i != -1 {
            if let e = nodes[i].entry { out.append(e.key) }
            i = nodes[i].next
        }
        return out
    }

    private mutating func removeNode(_ i: Int) {
        unlink(i)
        if let key = nodes[i].entry?.key { index[key] = nil }
        bytes -= nodes[i].cost
        nodes[i].entry = nil
        nodes[i].cost = 0
        free.append(i)
    }

    private mutating func moveToFront(_ i: Int) {
        guard head != i else { return }
        unlink(i)
        linkAtFront(i)
    }

    private mutating func linkAtFront(_ i: Int) {
        nodes[i].previous = -1
        nodes[i].next = head
        if head != -1 { nodes[head].previous = i }
        head = i
        if tail == -1 { tail = i }
    }

    private mutating func unlink(_ i: Int) {
        let p = nodes[i].previous, n = nodes[i].next
        if p != -1 { nodes[p].next = n } else if head == i { head = n }
        if n != -1 { nodes[n].previous = p } else if tail == i { tail = p }
        nodes[i].previous = -1
        nodes[i].next = -1
    }
}

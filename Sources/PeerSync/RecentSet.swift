/// A set that remembers at most `capacity` elements, forgetting the oldest first: for recognising
/// QoS 1 redeliveries and duplicate invalidations without growing without bound.
struct RecentSet<Element: Hashable & Sendable>: Sendable {
    let capacity: Int
    private var members: Set<Element> = []
    private var order: [Element] = []
    private var head = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Inserts `element`; false when it was already there.
    mutating func insert(_ element: Element) -> Bool {
        guard !members.contains(element) else { return false }
        if order.count < capacity {
            order.append(element)
        } else {
            members.remove(order[head])
            order[head] = element
            head = (head + 1) % capacity
        }
        members.insert(element)
        return true
    }

    func contains(_ element: Element) -> Bool { members.contains(element) }

    /// Members from oldest to newest.
    var orderedMembers: [Element] {
        order.count < capacity ? order : Array(order[head...] + order[..<head])
    }
    var count: Int { members.count }
}

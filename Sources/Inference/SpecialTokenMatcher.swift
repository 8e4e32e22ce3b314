/// Splits raw text around the texts of control, unknown and user-defined tokens, with the result
/// of llama.cpp's `tokenizer_st_partition`: tokens are taken longest first (then lowest id), each
/// at its leftmost non-overlapping occurrences in the text earlier tokens left.
///
/// llama.cpp searches the text once per special token; Gemma has 6,400 of them, so this finds every
/// occurrence of every token in one pass over the text with a trie, then accepts them in that
/// token order: an occurrence is taken when none of its bytes was taken before, which is exactly
/// what the token-by-token search leaves.
struct SpecialTokenMatcher: Sendable {
    enum Fragment: Equatable {
        case token(Int32)
        case text(Range<Int>)
    }

    private struct Entry: Sendable {
        var id: Int32
        var length: Int32
        /// User-defined tokens are split out even without special-token parsing.
        var alwaysParsed: Bool
    }

    /// The tokens in partition order.
    private let entries: [Entry]
    /// Trie nodes: the child of the root for each first byte (-1 for none), the other edges keyed
    /// by `node << 8 | byte`, and per node the entry whose text ends there (-1 for none).
    private let rootChildren: [Int32]
    private let edges: [UInt64: Int32]
    private let terminals: [Int32]

    /// - Parameter tokens: the special tokens' ids, texts (as stored) and whether each is user-defined.
    init(_ tokens: [(id: Int32, text: ArraySlice<UInt8>, userDefined: Bool)]) {
        let ordered = tokens.filter { !$0.text.isEmpty }.sorted {
            $0.text.count != $1.text.count ? $0.text.count > $1.text.count : $0.id < $1.id
        }
        entries = ordered.map { Entry(id: $0.id, length: Int32($0.text.count), alwaysParsed: $0.userDefined) }
        var rootChildren = [Int32](repeating: -1, count: 256)
        var edges: [UInt64: Int32] = [:]
        var terminals: [Int32] = [-1] // node 0 is the root
        for (rank, token) in ordered.enumerated() {
            var node: Int32 = 0
            for b in token.text {
                let existing = node == 0 ? rootChildren[Int(b)] : (edges[UInt64(node) << 8 | UInt64(b)] ?? -1)
                if existing >= 0 {
                    node = existing
                    continue
                }
                let child = Int32(terminals.count)
                terminals.append(-1)
                if node == 0 { rootChildren[Int(b)] = child } else { edges[UInt64(node) << 8 | UInt64(b)] = child }
                node = child
            }
            if terminals[Int(node)] < 0 { terminals[Int(node)] = Int32(rank) } // same text twice: the first in order
        }
        self.rootChildren = rootChildren
        self.edges = edges
        self.terminals = terminals
    }

    /// `bytes` as consecutive fragments: special tokens and the text between them. Without
    /// `parseSpecial` only user-defined tokens are split out.
    func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        let n = bytes.count
        guard n > 0 else { return [] }
        // Every occurrence of every eligible token, as (rank, start).
        var found: [(rank: Int32, start: Int32)] = []
        bytes.withUnsafeBufferPointer { text in
            for start in 0..<n {
                var node = rootChildren[Int(text[start])]
                var end = start + 1
                while node >= 0 {
                    let rank = terminals[Int(node)]
                    if rank >= 0 && (parseSpecial || entries[Int(rank)].alwaysParsed) {
                        found.append((rank, Int32(start)))
                    }
                    guard end < n, let child = edges[UInt64(node) << 8 | UInt64(text[end])] else { break }
                    node = child
                    end += 1
                }
            }
        }
        guard !found.isEmpty else { return [.text(0..<n)] }

        // The starts grouped by rank (a counting sort: linear even for long runs of spaces, where
        // every position matches many of the whitespace tokens); found is in start order, so each
        // group is too.
        var groupStart = [Int](repeating: 0, count: entries.count + 1)
        for f in found { groupStart[Int(f.rank) + 1] += 1 }
        for r in 0..<entries.count { groupStart[r + 1] += groupStart[r] }
        var cursor = groupStart
        var starts = [Int32](repeating: 0, count: found.count)
        for f in found {
            starts[cursor[Int(f.rank)]] = f.start
            cursor[Int(f.rank)] += 1
        }

        // Taken in rank order. Every span taken before is at least as long as the current token,
        // so one that overlaps it covers its first or its last byte.
        var taken = [Bool](repeating: false, count: n)
        var accepted: [(start: Int, entry: Entry)] = []
        for rank in 0..<entries.count where groupStart[rank] < groupStart[rank + 1] {
            let entry = entries[rank]
            for k in groupStart[rank]..<groupStart[rank + 1] {
                let start = Int(starts[k]), end = start + Int(entry.length)
                if taken[start] || taken[end - 1] { continue }
                for i in start..<end { taken[i] = true }
                accepted.append((start, entry))
            }
        }
        accepted.sort { $0.start < $1.start }

        var fragments: [Fragment] = []
        fragments.reserveCapacity(2 * accepted.count + 1)
        var position = 0
        for (start, entry) in accepted {
            if position < start { fragments.append(.text(position..<start)) }
            fragments.append(.token(entry.id))
            position = start + Int(entry.length)
        }
        if position < n { fragments.append(.text(position..<n)) }
        return fragments
    }
}

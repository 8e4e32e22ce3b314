import Foundation
import OutpostCore
import Synchronization

/// A stand-in for the agent behind the API, with no model: what it does is chosen by the last
/// message's content, and it records what it was asked and whether its answers were cancelled.
///
/// - `busy`, `too long`, `shutting down`, `fail`: throw the `ServiceError` of that name;
/// - `crash`: throws an error that is not a `ServiceError`;
/// - `hang`: produces `hang-piece`, then waits until its task is cancelled;
/// - `gate`: produces the first of `pieces`, waits until `openGate()`, then produces the rest;
/// - anything else: produces `pieces` one by one and answers with them joined.
final class ScriptedService: QueryAnswering, AdminService {
    /// Pieces with what JSON and SSE framing must carry through: quotes, a newline, a blank line,
    /// non-ASCII text and an emoji.
    static let pieces = ["Hel", "lo, ", "w\u{f6}rld \u{1F30D}", " \"quoted\"\n", "\n\nend"]
    static let busyMessage = "the generation queue is full"
    static let failMessage = "the model failed to decode"

    struct Record {
        var queries: [Query] = []
        var started = 0
        var cancelled = 0
        var invalidations: [InvalidationScope] = []
        var invalidationsStarted = 0
        var ready = true
        var holdInvalidations = false
        var gateOpen = false
        var gateWaiters: [CheckedContinuation<Void, Never>] = []
        var invalidationWaiters: [CheckedContinuation<Void, Never>] = []
    }

    struct Crash: Error {}

    let record = Mutex(Record())
    let sampling: SamplingParameters?

    init(samplingDefaults: SamplingParameters? = nil) {
        self.sampling = samplingDefaults
    }

    var modelName: String { "scripted-model" }
    var samplingDefaults: SamplingParameters? { sampling }

    var started: Int { record.withLock { $0.started } }
    var cancelled: Int { record.withLock { $0.cancelled } }
    var calls: Int { record.withLock { $0.queries.count } }

    func answer(_ query: Query, onPiece: @escaping @Sendable (String) async -> Void) async throws -> AnsweredQuery {
        record.withLock {
            $0.queries.append(query)
            $0.started += 1
        }
        let content = query.messages.last?.content ?? ""
        switch content {
        case "busy": throw ServiceError.busy(Self.busyMessage, retryAfter: 7)
        case "too long": throw ServiceError.tooLong("the prompt and max_tokens do not fit the context")
        case "shutting down": throw ServiceError.shuttingDown()
        case "fail": throw ServiceError.failed(Self.failMessage)
        case "crash": throw Crash()
        case "hang":
            await onPiece("hang-piece")
            do {
                try await Task.sleep(for: .seconds(120))
            } catch {
                record.withLock { $0.cancelled += 1 }
                throw CancellationError()
            }
            return Self.answered(["hang-piece"])
        case "gate":
            await onPiece(Self.pieces[0])
            await waitForGate()
            for piece in Self.pieces.dropFirst() { await onPiece(piece) }
            return Self.answered(Self.pieces)
        default:
            for piece in Self.pieces { await onPiece(piece) }
            return Self.answered(Self.pieces)
        }
    }

    static func answered(_ pieces: [String]) -> AnsweredQuery {
        AnsweredQuery(answer: Answer(text: pieces.joined(), finishReason: .length, promptTokens: 5, completionTokens: pieces.count),
                      cached: false, stale: false, cacheKey: nil, gateway: "gw-scripted", kernel: "fake",
                      timings: Timings(queueMs: 1, promptMs: 2, generateMs: 3, totalMs: 6))
    }

    func openGate() {
        let waiters = record.withLock { r in
            r.gateOpen = true
            defer { r.gateWaiters = [] }
            return r.gateWaiters
        }
        waiters.forEach { $0.resume() }
    }

    private func waitForGate() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let open = record.withLock { r in
                if !r.gateOpen { r.gateWaiters.append(c) }
                return r.gateOpen
            }
            if open { c.resume() }
        }
    }

    // MARK: Admin

    func health() async -> HealthReport {
        HealthReport(ready: record.withLock { $0.ready }, modelLoaded: true, modelFingerprint: "scripted-fingerprint",
                     kernel: "fake", configVersion: 3, broker: "disabled", gateway: "gw-scripted", uptimeSeconds: 12)
    }

    func cacheStatistics() async -> [String: Int] { ["hits": 11, "misses": 4] }

    func invalidate(_ scope: InvalidationScope) async throws -> InvalidationReceipt {
        let hold = record.withLock {
            $0.invalidationsStarted += 1
            return $0.holdInvalidations
        }
        if hold {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let held = record.withLock { r in
                    if r.holdInvalidations { r.invalidationWaiters.append(c) }
                    return r.holdInvalidations
                }
                if !held { c.resume() }
            }
        }
        if case .namespace("broken") = scope { throw ServiceError.failed("the cache file is read-only") }
        record.withLock { $0.invalidations.append(scope) }
        return InvalidationReceipt(scope: scope.description, hlc: "0000000000000042")
    }

    /// Lets held invalidations (and later ones) go on.
    func releaseInvalidations() {
        let waiters = record.withLock { r in
            r.holdInvalidations = false
            defer { r.invalidationWaiters = [] }
            return r.invalidationWaiters
        }
        waiters.forEach { $0.resume() }
    }

    func metricsText() async -> String {
        "# TYPE outpost_scripted_answers_total counter\noutpost_scripted_answers_total \(calls)\n"
    }
}

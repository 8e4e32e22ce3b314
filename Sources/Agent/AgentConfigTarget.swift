import FleetConfig
import Foundation
import OutpostCore
import PeerSync

/// Applies fleet configs to the agent, in two phases:
/// - at start-up, before it serves: `switchTo` lays the settings over the agent's own
///   configuration; `healthCheck` loads the model they name and has it answer a test prompt within
///   a deadline. The runtime loaded by a passing check is kept for the agent (`takeRuntime`).
/// - once `attach`ed to the running `AgentService`: `switchTo` first loads a changed model and has
///   it answer the test prompt (the old model keeps answering meanwhile), and only then switches
///   the configuration and the model at once; a model that fails is never switched to, so the
///   rollback that follows leaves the old one in place. `healthCheck` then checks that the service
///   runs the model the settings name.
///
/// Live: `generation.*` (defaults and `max_tokens_limit`), `cache.ttl_s` and
/// `cache.stale_while_revalidate_s` (read per fill), `model.path`. At the next start only:
/// `cache.memory_budget_mb`, `disk_budget_mb`, `flush_interval_ms`, `batch_size`, `queue_capacity`
/// (they size the cache's memory tier, store and write-behind queue when it opens);
/// `restartRequired` lists those that differ from what runs. `mqtt.topic_root` moves the MQTT link
/// (`PeerSyncService.requestTopicRoot`) once the config is switched to.
final class AgentConfigTarget: ConfigTarget, @unchecked Sendable {
    // @unchecked: the mutable state is guarded by `lock`.
    let base: AgentConfiguration
    let deadline: Duration
    private let lock = NSLock()
    private var current: AgentConfiguration
    private var checked: (path: String, runtime: ModelRuntime)?
    private var service: AgentService?
    /// The configuration the agent started with (what the cache was made from).
    private var started: AgentConfiguration?
    /// The MQTT link and the topic root last asked of it.
    private var peerService: PeerSyncService?
    private var root: String?

    init(base: AgentConfiguration, deadline: Duration = .seconds(60)) {
        self.base = base
        self.deadline = deadline
        current = base
    }

    /// The configuration last switched to (the agent's own when no fleet config is live).
    var configuration: AgentConfiguration { lock.withLock { current } }

    /// The runtime a passing health check loaded for the live model, if any.
    func takeRuntime() -> ModelRuntime? {
        lock.withLock {
            defer { checked = nil }
            return checked?.path == current.modelPath ? checked?.runtime : nil
        }
    }

    /// From now on, switch the running service.
    func attach(_ service: AgentService) {
        lock.withLock {
            self.service = service
            started = service.configuration
            checked = nil
        }
    }

    /// From now on, move the MQTT link when a config changes the topic root.
    func attach(peerService: PeerSyncService, root: String) {
        lock.withLock {
            self.peerService = peerService
            self.root = root
        }
    }

    /// Settings of the live configuration that only take effect at the next start, by config key.
    var restartRequired: [String] {
        lock.withLock {
            guard let started else { return [] }
            let (a, b) = (started, current)
            var keys: [String] = []
            if a.cache.memoryBudgetBytes != b.cache.memoryBudgetBytes { keys.append("cache.memory_budget_mb") }
            if a.cache.diskBudgetBytes != b.cache.diskBudgetBytes { keys.append("cache.disk_budget_mb") }
            if a.cache.flushIntervalMillis != b.cache.flushIntervalMillis { keys.append("cache.flush_interval_ms") }
            if a.cache.batchSize != b.cache.batchSize { keys.append("cache.batch_size") }
            if a.cache.queueCapacity != b.cache.queueCapacity { keys.append("cache.queue_capacity") }
            return keys
        }
    }

    func switchTo(_ settings: FleetSettings) async throws(FleetConfigError) {
        let next = try base.applying(settings)
        if let root = next.mqtt?.topicRoot {
            do { _ = try FleetTopics(fleet: next.mqtt!.fleet, gateway: next.gatewayID, root: root) } catch {
                throw .invalidPayload("mqtt.topic_root: \(error)")
            }
        }
        guard let service = lock.withLock({ service }) else {
            lock.withLock { current = next }
            return
        }
        var runtime: ModelRuntime?
        if next.modelPath != service.configuration.modelPath {
            runtime = try await loadAndTest(next)
        }
        service.switchLive(next, runtime: runtime)
        let move: (PeerSyncService, String)? = lock.withLock {
            current = next
            guard let peerService, let m = next.mqtt else { return nil }
            let wanted = m.topicRoot ?? "outpost/\(m.fleet)"
            guard wanted != root else { return nil }
            root = wanted
            return (peerService, wanted)
        }
        if let (peerService, root) = move { peerService.requestTopicRoot(root) }
    }

    func healthCheck(_ settings: FleetSettings) async throws(FleetConfigError) {
        let c = configuration
        if let service = lock.withLock({ service }) {
            // The model was loaded and tested before the switch.
            let running = service.configuration.modelPath
            guard running == c.modelPath else {
                throw .healthCheck("the agent runs \(running), not \(c.modelPath)")
            }
            return
        }
        let runtime = try await loadAndTest(c)
        lock.withLock { checked = (c.modelPath, runtime) }
    }

    /// Loads `c.modelPath` off the cooperative threads and has it answer a test prompt within the
    /// deadline.
    private func loadAndTest(_ c: AgentConfiguration) async throws(FleetConfigError) -> ModelRuntime {
        let deadline = ContinuousClock.now + self.deadline
        let limit = self.deadline
        let result: Result<ModelRuntime, FleetConfigError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let runtime: ModelRuntime
                do { runtime = try ModelRuntime(path: c.modelPath, threads: c.threads, contextLength: c.contextLength) } catch {
                    continuation.resume(returning: .failure(.healthCheck("cannot load the model \(c.modelPath): \(error)")))
                    return
                }
                do {
                    let query = try Query(messages: [ChatMessage(role: "user", content: "Reply with OK.")],
                                          sampling: SamplingParameters(temperature: 0, maxTokens: 4))
                    let r = try runtime.generate(runtime.promptTokens(query), sampling: query.sampling,
                                                 isCancelled: { ContinuousClock.now > deadline }, onText: { _ in })
                    guard ContinuousClock.now <= deadline else {
                        continuation.resume(returning: .failure(.healthCheck("the test prompt took longer than \(limit)")))
                        return
                    }
                    guard !r.ids.isEmpty else {
                        continuation.resume(returning: .failure(.healthCheck("the model produced no tokens for the test prompt")))
                        return
                    }
                    continuation.resume(returning: .success(runtime))
                } catch {
                    continuation.resume(returning: .failure(.healthCheck("the test prompt failed: \(error)")))
                }
            }
        }
        return try result.get()
    }
}

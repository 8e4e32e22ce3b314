import FleetConfig
import Foundation
import OutpostCore

/// Applies fleet configs to the agent at start-up, before it serves: `switchTo` lays the settings
/// over the agent's own configuration; `healthCheck` loads the model they name and has it answer a
/// test prompt within a deadline. The runtime loaded by a passing check is kept for the agent.
final class AgentConfigTarget: ConfigTarget, @unchecked Sendable {
    // @unchecked: the mutable state is guarded by `lock`.
    let base: AgentConfiguration
    let deadline: Duration
    private let lock = NSLock()
    private var current: AgentConfiguration
    private var checked: (path: String, runtime: ModelRuntime)?

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

    func switchTo(_ settings: FleetSettings) async throws(FleetConfigError) {
        let next = try base.applying(settings)
        lock.withLock { current = next }
    }

    func healthCheck(_ settings: FleetSettings) async throws(FleetConfigError) {
        let c = configuration
        let start = ContinuousClock.now
        let deadline = start + self.deadline
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
                        continuation.resume(returning: .failure(.healthCheck("the test prompt took longer than \(self.deadline)")))
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
        switch result {
        case .success(let runtime): lock.withLock { checked = (c.modelPath, runtime) }
        case .failure(let error): throw error
        }
    }
}

import AnswerCache
import FleetConfig
import FoundationEssentials
import OutpostCore

extension AgentConfiguration {
    /// This configuration with fleet settings laid over it (`model.path`, `generation.*`, `cache.*`,
    /// `mqtt.topic_root` when the agent is in a fleet). `invalidate` is acted on once, when the
    /// config carrying it is applied (`FleetConfigService`), and changes nothing here.
    func applying(_ settings: FleetSettings) throws(FleetConfigError) -> AgentConfiguration {
        var c = self
        func int(_ s: String, _ f: String) -> Int? {
            if case .number(let d)? = settings[s, f] { Int(d) } else { nil }
        }
        func double(_ s: String, _ f: String) -> Double? {
            if case .number(let d)? = settings[s, f] { d } else { nil }
        }
        if let path = settings.modelPath { c.modelPath = path }
        if let v = double("generation", "temperature") { c.defaults.temperature = v }
        if let v = int("generation", "top_k") { c.defaults.topK = v }
        if let v = double("generation", "top_p") { c.defaults.topP = v }
        if let v = int("generation", "max_tokens") { c.defaults.maxTokens = v }
        if let v = double("generation", "repeat_penalty") { c.defaults.repeatPenalty = v }
        if let v = int("generation", "max_tokens_limit") { c.maxTokensLimit = v }
        if let v = int("cache", "memory_budget_mb") { c.cache.memoryBudgetBytes = v << 20 }
        if let v = int("cache", "disk_budget_mb") { c.cache.diskBudgetBytes = v << 20 }
        if let v = int("cache", "ttl_s") { c.cache.ttlSeconds = v }
        if let v = int("cache", "stale_while_revalidate_s") { c.cache.staleWhileRevalidateSeconds = v }
        if let v = int("cache", "flush_interval_ms") { c.cache.flushIntervalMillis = v }
        if let v = int("cache", "batch_size") { c.cache.batchSize = v }
        if let v = int("cache", "queue_capacity") { c.cache.queueCapacity = v }
        if case .string(let root)? = settings["mqtt", "topic_root"], c.mqtt != nil { c.mqtt?.topicRoot = root }
        c.members = settings.members
        do { try c.cacheSettings.validate() } catch { throw .invalidPayload("cache: \(error.message)") }
        do { try c.defaults.validate() } catch { throw .invalidPayload("generation: \(error.message)") }
        guard c.defaults.maxTokens <= c.maxTokensLimit else {
            throw .invalidPayload("generation.max_tokens \(c.defaults.maxTokens) is above max_tokens_limit \(c.maxTokensLimit)")
        }
        return c
    }
}

extension AgentConfiguration {
    /// The answer cache's limits that a fleet config may change while it runs (`AnswerCache.reconfigure`).
    var cacheSettings: AnswerCache.Settings {
        AnswerCache.Settings(memoryBudgetBytes: cache.memoryBudgetBytes, diskBudgetBytes: cache.diskBudgetBytes,
                             flushIntervalMillis: UInt64(max(0, cache.flushIntervalMillis)), batchSize: cache.batchSize,
                             queueCapacity: cache.queueCapacity)
    }
}

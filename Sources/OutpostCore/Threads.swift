#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Threads and a lock on POSIX directly: Foundation's `Thread` and `NSLock` are not in
// FoundationEssentials, and the agent does not load full Foundation. These are for long-running
// service threads (the cache flusher, the MQTT loop); the forward pass's fork-join pool is
// Inference's `ThreadPool` (Inference stands alone, so it does not use this module).

/// A mutual-exclusion lock (a pthread mutex), for state shared with threads outside Swift concurrency.
public final class Lock: @unchecked Sendable {
    // @unchecked: the mutex is only touched through pthread calls, which are thread-safe.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Runs `body` on a new detached POSIX thread named `name` (at most 15 bytes show in `top -H`).
public func startThread(name: String, stackSize: Int = 0, _ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    if stackSize > 0 { pthread_attr_setstacksize(&attributes, stackSize) }
    #if canImport(Glibc)
    var thread = pthread_t()
    #else
    var thread: pthread_t?
    #endif
    let rc = pthread_create(&thread, &attributes, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    precondition(rc == 0, "cannot start the \(name) thread: error \(rc)")
    #if canImport(Glibc)
    _ = String(name.utf8.prefix(15))!.withCString { setThreadName(thread, $0) }
    #endif
}

#if canImport(Glibc)
/// glibc's pthread_setname_np (declared only under _GNU_SOURCE, so not imported).
@_silgen_name("pthread_setname_np")
private func setThreadName(_ thread: pthread_t, _ name: UnsafePointer<CChar>) -> Int32
#endif

import Glibc

/// Starts one of the stack's own threads (a protocol thread, a capture's writer), running
/// `body`. The program's signals must not land on it: every signal is blocked while the
/// thread is created, so it starts with all of them blocked, and the caller's mask comes
/// back after. The thread owns what `body` captures until it returns.
func startStackThread(_ body: @escaping () -> Void) throws(StackProcessError) -> pthread_t {
    final class Body { let run: () -> Void; init(_ run: @escaping () -> Void) { self.run = run } }
    var thread = pthread_t()
    let context = Unmanaged.passRetained(Body(body)).toOpaque()
    var all = sigset_t(), previous = sigset_t()
    sigfillset(&all)
    pthread_sigmask(SIG_SETMASK, &all, &previous)
    let r = pthread_create(&thread, nil, { context in
        Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }, context)
    pthread_sigmask(SIG_SETMASK, &previous, nil)
    guard r == 0 else {
        Unmanaged<Body>.fromOpaque(context).release()
        throw .threadFailed(errno: r)
    }
    return thread
}

import NetMPChannel

/// The rings' application side that sleeps: a writer until there is room, a reader until
/// there is data or the end. The sleep is a futex wait (WaitWord+Sleep).
extension SendRing {
    /// Blocks until there is room (or `timeout` nanoseconds passed).
    @discardableResult
    public func waitWritable(timeout: Int? = nil) -> Bool {
        writers.wait(timeout: timeout) { free > 0 }
    }
}

extension ReceiveRing {
    /// Blocks until something is readable or the stream ended (or `timeout` passed).
    @discardableResult
    public func waitReadable(timeout: Int? = nil) -> Bool {
        readers.wait(timeout: timeout) { readable > 0 || endOfStreamArrived }
    }
}

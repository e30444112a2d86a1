// The host's sockets are made of the channel (their rings, words and doorbells), and every
// module above the host uses both: the channel comes with the host.
@_exported import NetMPChannel

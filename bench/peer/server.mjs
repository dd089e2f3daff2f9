// automerge-repo's Node sync server, as its README sets one up: websocket network,
// file-system storage, and a share policy that answers requests without announcing.
// Usage: node server.mjs DATA_DIR  (prints "listening on 127.0.0.1:PORT")
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { WebSocketServer } from "ws"

const dir = process.argv[2]
if (!dir) {
  console.error("usage: node server.mjs DATA_DIR")
  process.exit(2)
}
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `node-server-${process.pid}`,
  sharePolicy: async () => false,
})
wss.on("listening", () => {
  console.log(`listening on 127.0.0.1:${wss.address().port}`)
})
process.on("SIGTERM", () => process.exit(0))

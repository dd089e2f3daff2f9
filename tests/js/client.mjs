// A real automerge-repo client (the npm packages, Node's websocket) for the interop test,
// tests/tests/e2e/interop.rs. It connects to nudge-server with a token in the URL, as a
// browser must, and prints one JSON line per step on stdout.
//
//   node client.mjs journal WS_URL DOC_ID TEXT
//     finds the journal, prints its shifts, adds a done shift TEXT written with the schema
//     of docs/schema.md (plain strings, timestamps, sets as maps), then stays connected
//     until its standard input closes (the test closes it once `nudge sync` saw the shift).
//   node client.mjs share WS_URL DOC_ID
//     finds a share view with a read-only token, prints what it shows, tries to change it,
//     and reports whether the server closed the connection; then reads the view again with
//     a fresh client to show whether the change got through.
import { Repo, ImmutableString } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { randomUUID } from "node:crypto"

const [mode, url, docId, text] = process.argv.slice(2)
if (!["journal", "share"].includes(mode) || !url || !docId) {
  console.error("usage: node client.mjs journal|share WS_URL DOC_ID [TEXT]")
  process.exit(2)
}

// The test bounds everything; this is the last resort if it does not.
setTimeout(() => {
  console.error("client.mjs: gave up after 60 s")
  process.exit(3)
}, 60_000).unref()

const say = value => console.log(JSON.stringify(value))
// Whether an app can serialise the whole document with plain JSON.stringify (an unsigned
// integer reads as BigInt, which it refuses).
const serialises = doc => {
  try {
    return JSON.stringify(doc).length > 0
  } catch (e) {
    return `${e}`
  }
}
const str = value => (value === undefined || value === null ? null : value.toString())

function connect() {
  // No reconnect within the test (a closed connection is what the share test looks for);
  // 0 would not mean "never": the adapter then retries in a tight loop.
  const adapter = new WebSocketClientAdapter(url, 120_000)
  const repo = new Repo({ network: [adapter] })
  return { adapter, repo }
}

async function find(repo) {
  const handle = await repo.find(`automerge:${docId}`)
  await handle.whenReady()
  return handle
}

function localDate(date) {
  const pad = n => String(n).padStart(2, "0")
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
}

if (mode === "journal") {
  if (!text) {
    console.error("client.mjs journal needs TEXT")
    process.exit(2)
  }
  const { repo } = connect()
  const handle = await find(repo)
  const doc = handle.doc()
  say({
    step: "read",
    stringify: serialises(doc),
    schema_version: Number(doc.schema_version),
    schema_minor: Number(doc.schema_minor ?? 0),
    shifts: Object.values(doc.shifts ?? {}).map(s => ({
      text: str(s.text),
      status: str(s.status),
    })),
  })
  const id = randomUUID().replaceAll("-", "")
  // The test's clock (NUDGE_NOW, as the nudge CLI reads it), else the real one.
  const now = process.env.NUDGE_NOW ? new Date(process.env.NUDGE_NOW) : new Date()
  handle.change(
    d => {
      d.shifts[id] = {
        text: new ImmutableString(text),
        status: new ImmutableString("done"),
        created_at: now,
        done_at: now,
        done_date: new ImmutableString(localDate(now)),
        done_tz: new ImmutableString(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"),
        minutes: 5,
        kind: new ImmutableString("other"),
        ideas: {},
        people: {},
        // A plain JS string is collaborative Text in Automerge 3; nudge reads it too.
        note: "a note written as Automerge Text",
      }
    },
    { message: `Add shift ${id.slice(0, 8)}: ${text}`, time: Math.floor(now.getTime() / 1000) },
  )
  say({ step: "added", id })
  // Stay connected until the test has seen the shift through nudge.
  process.stdin.resume()
  await new Promise(resolve => process.stdin.on("end", resolve))
  repo.shutdown()
  process.exit(0)
} else {
  const { adapter, repo } = connect()
  const handle = await find(repo)
  const view = handle.doc()
  say({
    step: "read",
    stringify: serialises(view),
    kind: str(view.kind),
    scope: str(view.scope),
    days: Object.keys(view.days ?? {}).length,
    shifts: Object.values(view.shifts ?? {}).map(s => str(s.text)),
  })
  const closed = new Promise(resolve => adapter.on("peer-disconnected", () => resolve(true)))
  handle.change(d => {
    d.days["1999-01-01"] = 1000
  })
  const wasClosed = await Promise.race([
    closed,
    new Promise(resolve => setTimeout(() => resolve(false), 10_000)),
  ])
  say({ step: "changed", closed: wasClosed })
  repo.shutdown()
  // A fresh client: what the server holds now.
  const again = connect()
  const fresh = (await find(again.repo)).doc()
  say({ step: "reread", forged: "1999-01-01" in (fresh.days ?? {}) })
  again.repo.shutdown()
  process.exit(0)
}

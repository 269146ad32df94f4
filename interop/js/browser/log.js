// One JSON log line on the page's console; browser-peer.mjs relays every
// console message that starts with {"ts": to its stderr as is.
import { toJson } from '../common.mjs'

export function log (event, fields = {}) {
  console.log(toJson({ ts: Date.now(), event, ...fields }))
}

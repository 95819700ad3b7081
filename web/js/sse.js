// Server-Sent Events read from a fetch response (the chat routes are POSTs, which EventSource cannot
// send), and the resume of a job's stream from GET /jobs/{id}/events after the last event id seen.

import { request } from "./api.js";

// Yields {event, data, id} as the stream brings them (the SSE wire format, comments skipped).
export async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (event.data.length) yield { event: event.event, data: event.data.join("\n"), id: event.id };
        event = { event: "message", data: [], id: null };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") event.data.push(text);
      else if (field === "event") event.event = text;
      else if (field === "id") event.id = text;
    }
  }
}

// Follows a job's events to its end: `token` for each piece of text (with the event id, to resume
// after it), then resolves with the final {event: "done"|"error", data}. A stream cut before its end
// rejects, so the caller can resume it.
export async function followJob(response, onToken) {
  for await (const message of sseEvents(response)) {
    const data = JSON.parse(message.data);
    const id = message.id === null ? null : parseInt(message.id, 10);
    if (message.event === "token") onToken(data.text, id);
    else if (message.event === "done" || message.event === "error") return { event: message.event, data, id };
  }
  throw new Error("the stream ended before the reply did");
}

// The rest of a job's events, after lastEventId (null: all of them).
export function resumeJob(jobId, lastEventId, signal) {
  const extraHeaders = lastEventId === null ? {} : { "Last-Event-ID": String(lastEventId) };
  return request(`/jobs/${encodeURIComponent(jobId)}/events`, { signal, accept: "text/event-stream", extraHeaders });
}

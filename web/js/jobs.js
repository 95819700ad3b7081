// A generation job as the page follows it: its text so far and the id of the last event seen, so a
// dropped connection (or a reload) picks it up from GET /jobs/{id}/events without repeating text.

import { ApiError, request } from "./api.js";
import { t } from "./i18n.js";
import { followJob, resumeJob } from "./sse.js";

// A page being left (reload, navigation) cuts its streams: that is no error, and the job goes on.
let leaving = false;
addEventListener("pagehide", () => (leaving = true));

export const isLeaving = () => leaving;

// Follows `job` ({id, text, lastEventId}) to its end from `response`, resuming after a dropped
// connection; `onText(job)` after each token. Resolves with the final event, or null when the page
// is being left.
export async function streamJob(job, response, onText) {
  const onToken = (text, id) => {
    job.text += text;
    job.lastEventId = id;
    onText(job);
  };
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await followJob(response, onToken);
    } catch (error) {
      if (leaving) return null;
      if (error instanceof ApiError || attempt >= 2) throw error;
      response = await resumeJob(job.id, job.lastEventId);
    }
  }
}

// Asks the worker to stop: the stream then ends with `done` (finish_reason "cancelled") and the
// partial reply is kept. A job that has just ended (409) needs nothing more.
export async function stopJob(jobId) {
  try {
    await request(`/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE" });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 409)) throw error;
  }
}

// The message a failed job's `error` event carries, as an ApiError the banner can show.
export function jobFailure(data) {
  return new ApiError(0, data.code, t("error.replyFailed", { message: data.message, code: data.code }));
}

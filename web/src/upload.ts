// Uploading a photo straight to the object store with a presigned POST.
// XMLHttpRequest rather than fetch: only XHR reports upload progress.

import { FieldError } from "./forms";

/** The store refused or never got the photo; shown under the photos. */
export class UploadError extends FieldError {
  constructor(message: string) {
    super("photos", message);
  }
}

/**
 * POSTs file to url as multipart/form-data: every policy field first, the
 * file last as "file" (S3 ignores fields after the file). Calls progress
 * with 0..1 as the bytes go out.
 */
export function postUpload(
  url: string,
  fields: Record<string, string>,
  file: Blob,
  progress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const body = new FormData();
    for (const [k, v] of Object.entries(fields)) body.append(k, v);
    body.append("file", file);

    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && e.total > 0) progress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        progress(1);
        resolve();
        return;
      }
      // S3 explains a refusal in XML: <Error><Code>…</Code><Message>…</Message></Error>.
      const msg = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText ?? "")?.[1];
      reject(new UploadError(msg ? `The storage refused the photo: ${msg}` : `The upload failed (HTTP ${xhr.status}).`));
    });
    xhr.addEventListener("error", () => reject(new UploadError("The upload failed: the storage could not be reached.")));
    xhr.addEventListener("abort", () => reject(new DOMException("upload aborted", "AbortError")));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(body);
  });
}

// Browser workaround for the RivetKit 2.3.19 client: it sends every action as `fetch(url, { body:
// request.body /* a ReadableStream */, duplex: "half" })`. Browsers only stream request bodies over
// HTTP/2 (Chromium fails the request with net::ERR_ALPN_NEGOTIATION_FAILED on an http:// engine;
// Firefox and Safari do not stream uploads at all), so without this every action fails with
// "Failed to fetch". Action bodies are small: read the stream into a buffer and send that instead.

type StreamingInit = RequestInit & { duplex?: "half" };

export function bufferStreamingBodies(fetchImpl: typeof fetch): typeof fetch {
  const wrapped = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const body = init?.body;
    if (typeof ReadableStream === "undefined" || !(body instanceof ReadableStream)) return fetchImpl(input, init);
    const { duplex: _duplex, ...rest } = init as StreamingInit;
    const buffered = await new Response(body).arrayBuffer();
    return fetchImpl(input, { ...rest, body: buffered });
  };
  return wrapped as typeof fetch;
}

let installed = false;

/** Patch `globalThis.fetch` once, in browsers only (Node and Bun stream request bodies fine). */
export function installFetchCompat(): void {
  if (installed || typeof window === "undefined") return;
  installed = true;
  globalThis.fetch = bufferStreamingBodies(globalThis.fetch.bind(globalThis));
}

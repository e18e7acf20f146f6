/**
 * The official `openai` client as an application points it at a coordinator:
 * its HTTPS API by IP address, trusting the coordinator's CA, no retries (a
 * test or a benchmark wants to see the first answer).
 *
 *   const client = openaiClient(c.apiUrl, inferenceKey, c.ca.material.certPem);
 */
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';

export function openaiClient(apiUrl: string, apiKey: string, caPem: string): OpenAI {
  const dispatcher = new Agent({ connect: { ca: caPem } });
  return new OpenAI({
    baseURL: `${apiUrl}/v1`,
    apiKey,
    maxRetries: 0,
    fetch: ((url: string, init?: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher })) as unknown as typeof fetch,
  });
}

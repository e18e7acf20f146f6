import { describe, expect, it } from 'vitest';
import { checkJobPayload } from '../../src/protocol/job-payload.js';

describe('checkJobPayload for llm jobs', () => {
  it.each([
    [{ prompt: 'Once' }, null],
    [{ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 8, temperature: 0, seed: 3, stop: ['\n'] }, null],
    [{ prompt: 'Once', maxTokens: 0 }, /^input\.maxTokens: /],
    [{ prompt: 'Once', messages: [{ role: 'user', content: 'Hi' }] }, /exactly one of "messages", "prompt" and "embed"/],
    [{ messages: [{ role: 'tool', content: 'Hi' }] }, /^input\.messages\.0\.role: /],
    [{ prompt: 'Once', stop: ['a', 'b', 'c', 'd', 'e'] }, /^input\.stop: /],
    [{ inputs: {} }, /^input/],
  ])('input %j → %s', (input, problem) => {
    const found = checkJobPayload('llm', 'input', input);
    if (problem === null) expect(found).toBeNull();
    else expect(found).toMatch(problem);
  });

  it('refuses an output that is not text, a finish reason and token counts', () => {
    expect(checkJobPayload('llm', 'output', { text: 'Hi', finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 1 } })).toBeNull();
    expect(checkJobPayload('llm', 'output', { text: 'Hi', finishReason: 'tired', usage: { promptTokens: 3, completionTokens: 1 } })).toMatch(/^output\.finishReason: /);
    expect(checkJobPayload('llm', 'output', { outputs: {} })).toMatch(/^output/);
  });
});

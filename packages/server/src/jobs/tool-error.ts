/**
 * Thrown by a tool or job handler to fail with a message meant for the caller. Any other error
 * is logged and reaches the caller only as a generic message.
 */
export class ToolError extends Error {
  override name = 'ToolError';
}

export function safeToolMessage(error: unknown, fallback: string): string {
  return error instanceof ToolError ? error.message.slice(0, 1000) : fallback;
}

/** The events of a Server-Sent Events body, each as its fields (`event`, `id`, `data`). */
export function parseSse(text: string): Array<Record<string, string>> {
  return text
    .split('\n\n')
    .map((block) => {
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
      }
      return fields;
    })
    .filter((fields) => fields.data !== undefined);
}

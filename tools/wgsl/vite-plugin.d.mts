export declare function wgslText(): { name: string; enforce: "pre"; load(id: string): string | null };

CREATE TABLE `meta` (
	`id` integer PRIMARY KEY NOT NULL,
	`seq` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE `repos` (
	`repo_id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`remote_url` text NOT NULL,
	`default_branch` text NOT NULL,
	`default_provider` text NOT NULL,
	`default_agent` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `repos_remote_url_unique` ON `repos` (`remote_url`);--> statement-breakpoint
CREATE TABLE `task_index` (
	`task_id` text PRIMARY KEY NOT NULL,
	`repo_id` text NOT NULL,
	`branch` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `task_index_repo_branch` ON `task_index` (`repo_id`,`branch`);--> statement-breakpoint
CREATE TABLE `task_summaries` (
	`task_id` text PRIMARY KEY NOT NULL,
	`summary_json` text NOT NULL,
	`updated_at` integer NOT NULL
);

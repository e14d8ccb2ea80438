CREATE TABLE `history` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`message` text NOT NULL,
	`data_json` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `provision_steps` (
	`step` text PRIMARY KEY NOT NULL,
	`position` integer NOT NULL,
	`state` text NOT NULL,
	`attempt` integer DEFAULT 0 NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`error` text,
	`detail` text
);
--> statement-breakpoint
CREATE TABLE `sandbox` (
	`id` integer PRIMARY KEY NOT NULL,
	`provider` text NOT NULL,
	`sandbox_id` text NOT NULL,
	`name` text NOT NULL,
	`workdir` text NOT NULL,
	`state` text NOT NULL,
	`labels_json` text NOT NULL,
	`daemon_token` text NOT NULL,
	`daemon_url` text,
	`daemon_headers_json` text
);
--> statement-breakpoint
CREATE TABLE `sessions` (
	`session_id` text PRIMARY KEY NOT NULL,
	`title` text NOT NULL,
	`agent` text NOT NULL,
	`status` text NOT NULL,
	`error` text,
	`closed` integer DEFAULT false NOT NULL,
	`sdk_record_json` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `task` (
	`id` integer PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`task_id` text NOT NULL,
	`repo_id` text NOT NULL,
	`repo_name` text NOT NULL,
	`remote_url` text NOT NULL,
	`title` text NOT NULL,
	`title_explicit` integer NOT NULL,
	`prompt` text NOT NULL,
	`base_branch` text NOT NULL,
	`branch` text,
	`agent` text NOT NULL,
	`provider` text NOT NULL,
	`status` text NOT NULL,
	`current_step` text,
	`error` text,
	`pull_request_json` text,
	`changes_json` text DEFAULT '[]' NOT NULL,
	`seq` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `transcript_events` (
	`session_id` text NOT NULL,
	`event_index` integer NOT NULL,
	`sdk_event_id` text,
	`kind` text NOT NULL,
	`text` text,
	`data_json` text,
	`raw_json` text,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`session_id`, `event_index`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `transcript_sdk_event` ON `transcript_events` (`sdk_event_id`);
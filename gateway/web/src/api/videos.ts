// The video library, uploads with their analysis job, and replays over stored video.
import type { ReplayJob, ReplayRequest, UploadJob, VideoList, VideoQuery } from '../types/videos'
import { api, post, sendRaw, seg } from './http'

export const listVideos = (query: VideoQuery): Promise<VideoList> => api<VideoList>('/api/videos', { query: { ...query } })

/** Upload a video as the raw body; the answer is the job that analyses it. */
export function uploadVideo(
  file: File,
  meta: { camera_id: string; start: string; model?: string },
  onProgress?: (fraction: number) => void,
): Promise<UploadJob> {
  // The route reads the raw body; a file without a video type goes as octet-stream.
  const type = file.type.startsWith('video/') ? file.type : 'application/octet-stream'
  return sendRaw<UploadJob>('/api/videos', { ...meta, filename: file.name }, file, type, onProgress)
}

export const getJob = (job: { id: string; url?: string }): Promise<UploadJob> =>
  api<UploadJob>(job.url ?? `/api/jobs/${seg(job.id)}`)

export const deleteVideo = (id: string): Promise<unknown> => api(`/api/videos/${seg(id)}`, { method: 'DELETE' })

export const listReplays = async (limit = 50): Promise<ReplayJob[]> =>
  (await api<{ items: ReplayJob[] }>('/api/replay', { query: { limit } })).items

export const startReplay = (body: ReplayRequest): Promise<ReplayJob> => post<ReplayJob>('/api/replay', body)

export const cancelReplay = (id: string): Promise<unknown> => post(`/api/replay/${seg(id)}/cancel`)

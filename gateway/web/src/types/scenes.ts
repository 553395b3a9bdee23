// The scene catalogue as GET /api/scenes describes it (gateway/api/scenes.py): the console
// keeps no scene list of its own.

/** One parameter of a scene, from the scene's pydantic Params model. */
export interface SceneParam {
  key: string
  label: string
  description: string | null
  type: 'string' | 'number' | 'integer' | 'boolean' | 'array' | 'object' | null
  nullable?: boolean
  required: boolean
  default: unknown
  enum: string[] | null
  items: Record<string, any> | null
  minimum: number | null
  maximum: number | null
  exclusive_minimum: number | null
  exclusive_maximum: number | null
  schema: Record<string, any>
}

export interface SceneAlarmType {
  code: string
  zh: string
  en: string
  gb_alarm_method?: number
  gb_alarm_type?: number | null
}

export interface SceneInfo {
  key: string
  name_zh: string
  name_en: string
  sample_fps: number
  implemented: boolean
  default_model: string | null
  uses_pose: boolean
  labels: string[]
  alarm_types: SceneAlarmType[]
  params: SceneParam[]
  params_schema: Record<string, any> | null
}

export interface SceneCatalogue {
  items: SceneInfo[]
  /** Every alarm type code (scenes and the gateway's own, such as storage) with its names. */
  alarm_types: { version: number; items: SceneAlarmType[] }
  scene_config_schema?: Record<string, any>
}
